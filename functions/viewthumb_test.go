package functions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/viewlink"
)

// imgSrc finds the pictures a page links.
var imgSrc = regexp.MustCompile(`<img[^>]*\ssrc="([^"]*)"`)

// The status page of a 20-image request, viewed 10 times as a browser
// without a cache does (the page, then every picture it links), costs no
// fetch at the image server once the images are processed: every
// thumbnail is served from the private bucket, made when its image was
// compressed, and is a JPEG of at most 160 px a side. Any other kind of
// thumbnail, or one of an image the request lacks, is 404.
func TestStatusPageViewsFetchNoImage(t *testing.T) {
	needStack(t)
	q := emulatortest.Suffix()
	names := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg", "coffee-exif-rotated.jpg"}
	var rows, paths []string
	for i := 0; i < 10; i++ {
		var urls []string
		for j := 0; j < 2; j++ {
			k := 2*i + j
			path := fmt.Sprintf("/counted/%s?thumbview=%d&q=%s", names[k%len(names)], k, q)
			paths = append(paths, path)
			urls = append(urls, imageURL+path)
		}
		rows = append(rows, fmt.Sprintf("P%d,Product %d,\"%s\"", i, i, strings.Join(urls, ",")))
	}
	body := "Serial Number,Product Name,Input Image URLs\n" + strings.Join(rows, "\n") + "\n"
	resp, err := http.Post(apiURL+"/api/upload", "text/csv", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var up struct{ RequestID, ViewURL string }
	err = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	if err != nil || up.ViewURL == "" {
		t.Fatalf("upload: %s, viewUrl %q (%v)", resp.Status, up.ViewURL, err)
	}
	if v := awaitFinal(t, up.RequestID, 90*time.Second); v.ProcessedImages != 20 {
		t.Fatalf("%d of 20 images processed", v.ProcessedImages)
	}
	fetches := func() int {
		n := 0
		for _, p := range paths {
			n += fetchCounts.Get(p)
		}
		return n
	}
	processed := fetches()
	if processed < 20 {
		t.Fatalf("the image server saw %d fetches for 20 images", processed)
	}

	// A browser: cookies kept, nothing cached, no API key.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{Jar: jar, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(u string) (*http.Response, []byte) {
		t.Helper()
		resp, err := browser.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	// Each view is another holder of a link to the request (one link's
	// rate limit would otherwise pace the views).
	signer, err := viewlink.NewSigner(cfg.ViewLinkKeys)
	if err != nil {
		t.Fatal(err)
	}
	link := func() string {
		return apiURL + "/api/view/" + up.RequestID + "?t=" + signer.Token(up.RequestID, apiKeyID, time.Now().Add(time.Hour).Add(time.Duration(rand.IntN(1e6))*time.Second))
	}
	thumbs := 0
	for view := 1; view <= 10; view++ {
		resp, page := get(link())
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("view %d: %s", view, resp.Status)
		}
		srcs := imgSrc.FindAllStringSubmatch(string(page), -1)
		if len(srcs) < 20 {
			t.Fatalf("view %d: the page links %d pictures, want one for each of the 20 images", view, len(srcs))
		}
		for _, m := range srcs {
			u, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
			if err != nil {
				t.Fatal(err)
			}
			resp, b := get(u.String())
			cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" || err != nil {
				t.Fatalf("view %d: %s: %s %s (%v)", view, u.Path, resp.Status, resp.Header.Get("Content-Type"), err)
			}
			if cfg.Width > pipeline.ThumbSide || cfg.Height > pipeline.ThumbSide {
				t.Errorf("view %d: %s is %d×%d, over %d px", view, u.Path, cfg.Width, cfg.Height, pipeline.ThumbSide)
			}
			thumbs++
		}
	}
	// No other kind, and no thumbnail of an image the request lacks.
	_, page := get(up.ViewURL)
	first, err := url.Parse(html.UnescapeString(imgSrc.FindStringSubmatch(string(page))[1]))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{strings.Replace(first.Path, "/out", "/in", 1), strings.Replace(first.Path, "/thumb/0-0/", "/thumb/10-0/", 1)} {
		u := *first
		u.Path = path
		if resp, _ := get(apiURL + u.RequestURI()); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp.Status)
		}
	}
	if n := fetches() - processed; n != 0 {
		t.Errorf("10 views of the page (%d thumbnails served) made %d fetches at the image server, want 0", thumbs, n)
	}
	t.Logf("10 views, %d thumbnails served, %d fetches at the image server (all while processing)", thumbs, processed)
}
