package functions_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
)

// 300 product variants share 10 photos (a third of them written with an
// upper-case host and a fragment): on the stack, each photo is fetched,
// compressed and stored once, and every variant is counted and links to
// its photo's output.
func TestEachURLOncePerRequestOnTheStack(t *testing.T) {
	t.Parallel()
	needStack(t)
	q := emulatortest.Suffix()
	names := []string{"coffee.jpg", "chelsea.png", "astronaut.webp", "rocket-progressive.jpg", "coffee-exif-rotated.jpg"}
	url := func(i int) string { return fmt.Sprintf("%s/counted/%s?photo=%d&q=%s", imageURL, names[i%5], i, q) }
	var rows []string
	for p := 0; p < 300; p++ {
		u := url(p % 10)
		if p%3 == 1 {
			u = strings.Replace(u, "http://127.0.0.1", "HTTP://127.0.0.1", 1) + "#variant"
		}
		rows = append(rows, fmt.Sprintf("V%d,Variant %d,%s", p, p, u))
	}
	id, _ := uploadCSV(t, "Serial Number,Product Name,Input Image URLs\n"+strings.Join(rows, "\n")+"\n")
	v := awaitFinal(t, id, 120*time.Second)
	if v.Status != batch.Completed || v.ProcessedImages != 300 || v.FailedImages != 0 {
		t.Fatalf("%s: %d processed, %d failed of 300", v.Status, v.ProcessedImages, v.FailedImages)
	}
	fetches := 0
	for i := 0; i < 10; i++ {
		fetches += fetchCounts.Get(strings.TrimPrefix(url(i), imageURL))
	}
	ctx := context.Background()
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	writes := 0
	it := gcs.Bucket(cfg.Bucket).Objects(ctx, &storage.Query{Prefix: "requests/" + id + "/"})
	for {
		_, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		writes++
	}
	req, err := st.GetRequest(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	products, err := st.Products(ctx, req, 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	results, err := st.Results(ctx, id, 0, products)
	if err != nil {
		t.Fatal(err)
	}
	compressions, outputs := 0, map[string]bool{}
	var in, out int64
	for _, r := range results {
		if r.SameAs == "" {
			compressions++
		}
		outputs[r.Object] = true
		in, out = in+r.InputBytes, out+r.OutBytes
	}
	// The status's totals count every occurrence, as the user listed it.
	if v.InputBytes != in || v.OutputBytes != out || v.SavedBytes != in-out || in <= out || v.SavedPercent <= 0 {
		t.Errorf("status totals in %d out %d saved %d (%.1f %%), the results sum to %d and %d",
			v.InputBytes, v.OutputBytes, v.SavedBytes, v.SavedPercent, in, out)
	}
	if fetches != 10 || writes != 10 || compressions != 10 || len(outputs) != 10 || len(results) != 300 {
		t.Errorf("300 variants of 10 photos: %d fetches, %d objects stored, %d compressions, %d distinct outputs, %d results; want 10, 10, 10, 10, 300",
			fetches, writes, compressions, len(outputs), len(results))
	}
	t.Logf("300 products sharing 10 photos: %d fetches, %d compressions, %d storage writes (300 each without deduplication)", fetches, compressions, writes)
}
