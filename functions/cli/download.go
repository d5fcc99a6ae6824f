package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// download saves every output of the request into dir, named
// SERIAL-N.jpg (N counts the product's images from 1), and each extra size
// as SERIAL-N-NAME.jpg, with a bar. Every part of a name that comes from
// the server or the catalogue is made safe by namePart; a name already
// taken in this download gets ~2, ~3… before .jpg (see outputNames).
func (c *command) download(ctx context.Context, args []string, dir string) (int, error) {
	if len(args) != 1 || dir == "" {
		return ExitError, errors.New("download takes a request ID and a folder: imgpipe download ID -d DIR")
	}
	if err := c.needServer(); err != nil {
		return ExitError, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ExitError, fmt.Errorf("creating %s: %w", dir, err)
	}
	// Files are created through root: no name, and no symbolic link
	// already in dir, leads out of it.
	root, err := os.OpenRoot(dir)
	if err != nil {
		return ExitError, fmt.Errorf("opening %s: %w", dir, err)
	}
	defer root.Close()
	l, err := c.listOutputs(ctx, args[0])
	if err != nil {
		return ExitError, err
	}
	n, err := c.fetchAll(ctx, l.items, root, dir)
	if err != nil {
		return ExitError, err
	}
	if c.json {
		_ = json.NewEncoder(c.env.Stdout).Encode(map[string]any{"requestId": args[0], "files": len(l.items), "bytes": n, "dir": dir, "missing": l.missing})
	} else {
		c.out("%d outputs (%s) in %s; %d of %d images have none (failed or not done yet: %s)\n",
			len(l.items), wire.FormatBytes(n), dir, l.missing, l.total, l.status)
	}
	return failedCode(l.missing), nil
}

// output is one file to download: its name in the folder and its link.
type output struct{ name, url string }

// outputList is what a request has to download.
type outputList struct {
	items   []output
	missing int // images without an output: failed, or not done yet
	total   int
	status  batch.Status
}

// listOutputs names every output of request id, reading every page of its
// products.
func (c *command) listOutputs(ctx context.Context, id string) (outputList, error) {
	var l outputList
	names := outputNames{}
	err := c.eachPage(ctx, id, func(s wire.Status) error {
		l.status, l.total = s.Status, s.TotalImages
		for _, p := range s.Products {
			if err := l.add(p, names); err != nil {
				return err
			}
		}
		return nil
	})
	return l, err
}

// add lists product p's outputs: the main one of each image, then each
// image's sizes in name order.
func (l *outputList) add(p wire.Product, names outputNames) error {
	serial := namePart(p.SerialNumber, "product", maxSerialPart)
	for i, u := range p.OutputImageURLs {
		if u == "" {
			l.missing++
			continue
		}
		name, err := names.take(fmt.Sprintf("%s-%d", serial, i+1))
		if err != nil {
			return err
		}
		l.items = append(l.items, output{name: name, url: u})
	}
	for _, out := range p.Outputs {
		sizes := make([]string, 0, len(out.Sizes))
		for size := range out.Sizes {
			sizes = append(sizes, size)
		}
		sort.Strings(sizes)
		for _, size := range sizes {
			name, err := names.take(fmt.Sprintf("%s-%d-%s", serial, out.Index+1, namePart(size, "size", maxSizePart)))
			if err != nil {
				return err
			}
			l.items = append(l.items, output{name: name, url: out.Sizes[size].URL})
		}
	}
	return nil
}

// fetchAll saves items in root, the folder dir, showing progress, and
// returns the bytes saved.
func (c *command) fetchAll(ctx context.Context, items []output, root *os.Root, dir string) (int64, error) {
	bar := c.newBar(len(items), "downloading")
	var total int64
	for i, it := range items {
		n, err := c.fetchTo(ctx, it.url, root, dir, it.name)
		if err != nil {
			return total, err
		}
		total += n
		if bar != nil {
			_ = bar.Add(1)
		} else if !c.json && ((i+1)%50 == 0 || i+1 == len(items)) {
			c.out("downloaded %d/%d\n", i+1, len(items))
		}
	}
	c.endBar(bar)
	return total, nil
}

// fetchTo saves the output at link (a bucket link: no API key) as name
// inside root, the folder dir.
func (c *command) fetchTo(ctx context.Context, link string, root *os.Root, dir, name string) (int64, error) {
	path := filepath.Join(dir, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return 0, fmt.Errorf("output link %q: %w", link, err)
	}
	resp, err := c.env.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("downloading %s: %v; check your connection and run download again", link, unwrapURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("downloading %s: %s (a signed link expires: run download again for fresh ones)", link, resp.Status)
	}
	f, err := root.Create(name)
	if err != nil {
		return 0, fmt.Errorf("creating %s: %w", path, err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", path, err)
	}
	return n, nil
}
