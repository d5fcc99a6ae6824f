package batch

import (
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
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

// A 30 MiB sizing value, handed to the parse functions as a string (a
// query is one), is refused, naming the option and its bound, with less
// than 16 MiB allocated.
func TestHugeSizingValueRefusedUnread(t *testing.T) {
	huge := strings.Repeat("thumb:200,", 3<<20)
	hugeArray := "[" + strings.Repeat(`{"name":"t","width":1},`, (30<<20)/23) + "]"
	hugeRaw := json.RawMessage(hugeArray)
	for _, tt := range []struct {
		name  string
		parse func() []string
		want  string
	}{
		{"ParseSizing sizes", func() []string { _, p := ParseSizing("", "", huge); return p }, "sizes: longer than 2048 bytes"},
		{"ParseSizing sizes as JSON", func() []string { _, p := ParseSizing("", "", hugeArray); return p }, "sizes: longer than 2048 bytes"},
		{"ParseSizing maxWidth", func() []string { _, p := ParseSizing(huge, "", ""); return p }, "maxWidth: longer than 32 bytes"},
		{"ParseSizing maxHeight", func() []string { _, p := ParseSizing("", huge, ""); return p }, "maxHeight: longer than 32 bytes"},
		{"ParseSizes", func() []string { _, p := ParseSizes(huge); return p }, "sizes: longer than 2048 bytes"},
		{"SizingFromJSON", func() []string { _, p := SizingFromJSON(nil, nil, hugeRaw); return p }, "sizes: longer than 2048 bytes"},
		{"ParseQuality", func() []string {
			if _, err := ParseQuality(huge); err != nil {
				return []string{"quality: " + err.Error()}
			}
			return nil
		}, "quality: longer than 32 bytes"},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		probs := tt.parse()
		runtime.ReadMemStats(&after)
		if len(probs) != 1 || !strings.Contains(probs[0], tt.want) {
			t.Errorf("%s: %.200q, want one problem saying %q", tt.name, probs, tt.want)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n >= 16<<20 {
			t.Errorf("%s: %d MiB allocated refusing a 30 MiB value, want less than 16", tt.name, n>>20)
		}
	}
}

// ParseJSON bounds each top-level member but products as the decoder
// names it (any case, escapes decoded), and is not misled by strings that
// hold JSON's punctuation.
func TestParseJSONBoundsMembers(t *testing.T) {
	tricky := `"A \"},\"sizes\":[ {x} \\"`
	product := func(name string) string {
		return `{"serialNumber":1,"productName":` + name + `,"inputUrls":["https://example.com/a.jpg"]}`
	}
	pad := strings.Repeat(" ", 3000)
	for _, tt := range []struct {
		body, want string // want: "" accepted, else a detail it must hold
	}{
		{`{"products":[` + product(tricky) + `],"sizes":"thumb:200"}`, ""},
		{`{"products":[` + product(`"`+strings.Repeat("x", 500)+`"`) + pad + `],"sizes":[{"name":"thumb","width":200}]}`, ""},
		{`{"sizes":"thumb:200` + pad + `","products":[` + product(`"a"`) + `]}`, "sizes: longer than 2048 bytes"},
		{`{"products":[` + product(`"a"`) + `],"SIZES":[{"name":"thumb","width":200}` + pad + `]}`, "sizes: longer than 2048 bytes"},
		{`{"products":[` + product(`"a"`) + `],"\u0073izes":"thumb:200` + pad + `"}`, "sizes: longer than 2048 bytes"},
		{`{"products":[` + product(`"a"`) + `],"quality":` + strings.Repeat("9", 33) + `}`, "quality: longer than 32 bytes"},
		{`{"products":[` + product(`"a"`) + `],"webhookUrl":"https://h/` + strings.Repeat("a", 4096) + `"}`, "webhookUrl: longer than 4096 bytes"},
		{`{"products":[` + product(`"a"`) + `],"other":"` + strings.Repeat("a", 5000) + `"}`, "other: longer than 4096 bytes"},
	} {
		_, err := ParseJSON(strings.NewReader(tt.body), DefaultLimits)
		var fe *fault.Error
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%.80s…: %v, want it accepted", tt.body, err)
		case tt.want != "" && (!errors.As(err, &fe) || fe.Kind != fault.Invalid || !strings.Contains(strings.Join(fe.Details, "\n"), tt.want)):
			t.Errorf("%.80s…: %v, want a 400 saying %q", tt.body, err, tt.want)
		}
	}
}

// OutputPixels counts each box's largest output for any image within the
// limits; CheckPixels refuses past twice the largest image, saying why.
func TestOutputPixels(t *testing.T) {
	lim := DefaultImageLimits // 50 MP, 20000 a side
	tests := []struct {
		s    Sizing
		want int64
	}{
		{Sizing{}, 50_000_000},
		{Sizing{MaxWidth: 1600}, 1600 * 20000},
		{Sizing{MaxWidth: 1600, MaxHeight: 1600}, 1600 * 1600},
		{Sizing{MaxHeight: 5000}, 50_000_000},
		{Sizing{Sizes: []Size{{"thumb", 200, 0}, {"medium", 800, 800}}}, 50_000_000 + 200*20000 + 800*800},
		{Sizing{MaxWidth: 7000, MaxHeight: 7000, Sizes: []Size{{"a", 6999, 0}, {"b", 0, 6999}}}, 49_000_000 + 2*50_000_000},
	}
	for _, tt := range tests {
		if got := tt.s.OutputPixels(lim); got != tt.want {
			t.Errorf("%s: %d pixels, want %d", tt.s.Describe(), got, tt.want)
		}
		if err := tt.s.CheckPixels(lim); (err != nil) != (tt.want > 100_000_000) {
			t.Errorf("%s: CheckPixels %v, want refused = %v", tt.s.Describe(), err, tt.want > 100_000_000)
		}
	}
	err := Sizing{Sizes: []Size{{"a", 10000, 0}, {"b", 0, 10000}}}.CheckPixels(lim)
	if err == nil || !strings.Contains(err.Error(), "150000000 pixels, more than the cap of 100000000") || !strings.Contains(err.Error(), "give both a width and a height") {
		t.Errorf("refusal %v, want the figures and what to do", err)
	}
}
