package batch

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/shared/fault"
)

func TestParseSizing(t *testing.T) {
	tests := []struct {
		maxW, maxH, sizes string
		want              Sizing
		problems          []string // each a substring of one problem, in order
	}{
		{"", "", "", Sizing{}, nil},
		{"1600", "", "", Sizing{MaxWidth: 1600}, nil},
		{" 1600 ", "1200", "thumb:200", Sizing{MaxWidth: 1600, MaxHeight: 1200, Sizes: []Size{{Name: "thumb", Width: 200}}}, nil},
		{"", "", "thumb:200, medium:800x800 ,tall:X600", Sizing{Sizes: []Size{{"thumb", 200, 0}, {"medium", 800, 800}, {"tall", 0, 600}}}, nil},
		{"", "", `[{"name":"thumb","width":200},{"name":"medium","width":800,"height":"800"}]`,
			Sizing{Sizes: []Size{{"thumb", 200, 0}, {"medium", 800, 800}}}, nil},
		{"0", "-5", "", Sizing{}, []string{`maxWidth: "0" is not a whole number from 1 to 20000`, `maxHeight: "-5"`}},
		{"1.5", "20001", "", Sizing{}, []string{`maxWidth: "1.5"`, `maxHeight: "20001"`}},
		{"", "", "thumb", Sizing{}, []string{`sizes: entry 1 "thumb": want name:WIDTH`}},
		{"", "", "thumb:abc", Sizing{}, []string{`sizes: entry 1 "thumb:abc": width "abc"`}},
		{"", "", "thumb:x", Sizing{}, []string{`sizes[0] "thumb": give a width, a height or both`}},
		{"", "", "thumb:200,Thumb:300", Sizing{}, []string{`sizes[1].name: "Thumb" is also the name of sizes[0]`}},
		{"", "", "2x:200", Sizing{}, []string{`sizes[0].name: "2x" must start with a letter`}},
		{"", "", "a/b:200", Sizing{}, []string{`sizes[0].name: "a/b" may hold only letters`}},
		{"", "", ":200", Sizing{}, []string{`sizes[0].name: is empty`}},
		{"", "", "a:1,b:1,c:1,d:1,e:1,f:1", Sizing{}, []string{"sizes: 6 sizes, more than 5"}},
		{"", "", `[{"name":"thumb","width":200,"crop":true}]`, Sizing{}, []string{`sizes[0]: want {"name", "width", "height"}: json: unknown field "crop"`}},
		{"", "", `[{"name":"thumb","width":200.5}]`, Sizing{}, []string{`sizes[0].width: "200.5" is not a whole number`}},
		{"", "", `[{"name":3,"width":200}]`, Sizing{}, []string{`sizes[0]: want {"name", "width", "height"}: name must not be a JSON number`}},
		{"", "", `[1,2`, Sizing{}, []string{"sizes: unexpected end of JSON input"}},
	}
	for _, tt := range tests {
		got, probs := ParseSizing(tt.maxW, tt.maxH, tt.sizes)
		if len(probs) != len(tt.problems) {
			t.Errorf("ParseSizing(%q, %q, %q): problems %q, want %d like %q", tt.maxW, tt.maxH, tt.sizes, probs, len(tt.problems), tt.problems)
			continue
		}
		for i, p := range tt.problems {
			if !strings.Contains(probs[i], p) {
				t.Errorf("ParseSizing(%q, %q, %q): problem %q, want it to say %q", tt.maxW, tt.maxH, tt.sizes, probs[i], p)
			}
		}
		if len(probs) == 0 && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseSizing(%q, %q, %q) = %+v, want %+v", tt.maxW, tt.maxH, tt.sizes, got, tt.want)
		}
	}
}

func TestParseJSONSizing(t *testing.T) {
	body := `{"products":[{"serialNumber":1,"productName":"A","inputUrls":["https://example.com/a.jpg"]}],
		"maxWidth":1600,"maxHeight":"1200","sizes":[{"name":"thumb","width":200},{"name":"medium","width":800,"height":800}]}`
	sub, err := ParseJSON(strings.NewReader(body), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := Sizing{MaxWidth: 1600, MaxHeight: 1200, Sizes: []Size{{"thumb", 200, 0}, {"medium", 800, 800}}}
	if !reflect.DeepEqual(sub.Sizing, want) {
		t.Errorf("sizing %+v, want %+v", sub.Sizing, want)
	}
	short := `{"products":[{"serialNumber":1,"productName":"A","inputUrls":["https://example.com/a.jpg"]}],"sizes":"thumb:200"}`
	if sub, err := ParseJSON(strings.NewReader(short), DefaultLimits); err != nil || !reflect.DeepEqual(sub.Sizing, Sizing{Sizes: []Size{{"thumb", 200, 0}}}) {
		t.Errorf("short form: %+v, %v", sub.Sizing, err)
	}
	bad := `{"products":[{"serialNumber":1,"productName":"A","inputUrls":["https://example.com/a.jpg"]}],"maxWidth":0,"sizes":{"thumb":200}}`
	_, err = ParseJSON(strings.NewReader(bad), DefaultLimits)
	var fe *fault.Error
	if !errors.As(err, &fe) || fault.HTTPStatus(err) != 400 || len(fe.Details) != 2 ||
		!strings.Contains(fe.Details[0], "maxWidth") || !strings.Contains(fe.Details[1], "sizes: want an array") {
		t.Errorf("bad sizing: %v (%+v)", err, fe)
	}
}

// FuzzParseSizing: whatever the fields, no panic; problems or a sizing
// that keeps every rule; an accepted sizing reads back the same from its
// short form and from its JSON.
func FuzzParseSizing(f *testing.F) {
	f.Add("1600", "", "thumb:200,medium:800x800")
	f.Add("", "900", `[{"name":"thumb","width":200},{"name":"medium","width":800,"height":800}]`)
	f.Add("abc", "0", "a:x1,b:2x,c:3x4,d:,e")
	f.Add("", "", `[{"name":"t","height":"12"}, null]`)
	f.Add("20000", "1", "Zz_-9:20000x20000")
	f.Fuzz(func(t *testing.T, maxW, maxH, sizes string) {
		s, probs := ParseSizing(maxW, maxH, sizes)
		if len(probs) > 0 {
			err := SizingError(probs)
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Message == "" || fault.HTTPStatus(err) != 400 {
				t.Fatalf("problems %q give %v", probs, err)
			}
			return
		}
		side := func(n int) bool { return n >= 0 && n <= MaxSide }
		if !side(s.MaxWidth) || !side(s.MaxHeight) || len(s.Sizes) > MaxSizes {
			t.Fatalf("accepted %+v", s)
		}
		names := map[string]bool{}
		for _, sz := range s.Sizes {
			if checkSizeName(sz.Name) != nil || names[strings.ToLower(sz.Name)] || !side(sz.Width) || !side(sz.Height) || sz.Width+sz.Height == 0 {
				t.Fatalf("accepted size %+v in %+v", sz, s)
			}
			names[strings.ToLower(sz.Name)] = true
		}
		if len(s.Sizes) == 0 {
			return
		}
		short := make([]string, len(s.Sizes))
		for i, sz := range s.Sizes {
			short[i] = sz.String()
		}
		again, probs := ParseSizes(strings.Join(short, ","))
		if len(probs) > 0 || !reflect.DeepEqual(again, s.Sizes) {
			t.Fatalf("short form %q reads back %+v %q, want %+v", strings.Join(short, ","), again, probs, s.Sizes)
		}
		js, _ := json.Marshal(s.Sizes)
		if again, probs = ParseSizes(string(js)); len(probs) > 0 || !reflect.DeepEqual(again, s.Sizes) {
			t.Fatalf("JSON %s reads back %+v %q", js, again, probs)
		}
	})
}
