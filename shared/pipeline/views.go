package pipeline

import (
	"context"
	"encoding/csv"
	"io"
	"math"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// MaxPage is the most products one status answer holds.
const MaxPage = 1000

// Status reads a request's status with products [offset, offset+limit).
// owner, when not empty, must match the request's: another key's request
// is not found.
func (s *Service) Status(ctx context.Context, id, owner string, offset, limit int) (wire.Status, error) {
	r, err := s.getOwned(ctx, id, owner)
	if err != nil {
		return wire.Status{}, err
	}
	c, updated, err := s.Completions.Counts(ctx, r)
	if err != nil {
		return wire.Status{}, err
	}
	v := wire.Status{
		RequestID: r.ID, TotalImages: r.TotalImages, ProcessedImages: c.Processed, FailedImages: c.Failed,
		InputBytes: c.InputBytes, OutputBytes: c.OutputBytes, SavedBytes: c.InputBytes - c.OutputBytes,
		CreatedAt: r.CreatedAt, UpdatedAt: maxTime(r.CreatedAt, updated), Sizing: r.Sizing,
	}
	if c.InputBytes > 0 {
		v.SavedPercent = math.Round(1000*float64(v.SavedBytes)/float64(c.InputBytes)) / 10
	}
	switch r.Status {
	case batch.Completed, batch.Failed:
		v.Status = r.Status
		at := r.CompletedAt
		v.CompletedAt = &at
		v.UpdatedAt = maxTime(v.UpdatedAt, at)
	default:
		// Every image may be counted a moment before the completion is
		// recorded: the status turns final only with the completion.
		v.Status = batch.StatusOf(batch.Counts{Total: r.TotalImages, Processed: c.Processed, Failed: c.Failed})
		if v.Status == batch.Completed || v.Status == batch.Failed {
			v.Status = batch.Processing
		}
	}
	limit = min(max(limit, 1), MaxPage)
	offset = max(offset, 0)
	v.Page = wire.Page{Offset: offset, Limit: limit, TotalProducts: r.ProductCount}
	if next := offset + limit; next < r.ProductCount {
		v.Page.NextOffset = &next
	}
	if v.Webhook, err = s.webhookView(ctx, r); err != nil {
		return v, err
	}
	v.Products, err = s.productViews(ctx, r, offset, offset+limit)
	return v, err
}

// Owned is request id, or not found unless it exists and belongs to owner
// (any owner when owner is empty).
func (s *Service) Owned(ctx context.Context, id, owner string) (batch.Request, error) {
	return s.getOwned(ctx, id, owner)
}

func (s *Service) getOwned(ctx context.Context, id, owner string) (batch.Request, error) {
	r, err := s.Requests.GetRequest(ctx, id)
	if err != nil {
		return r, err
	}
	if owner != "" && r.Owner != owner {
		return batch.Request{}, fault.New(fault.NotFound, "", "request %q not found", id)
	}
	return r, nil
}

func (s *Service) productViews(ctx context.Context, r batch.Request, from, to int) ([]wire.Product, error) {
	pages, err := s.PageProducts(ctx, r, from, to)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Product, len(pages))
	for i, p := range pages {
		pv := wire.Product{SerialNumber: p.SerialNumber, ProductName: p.ProductName,
			InputImageURLs: make([]string, len(p.Images)), OutputImageURLs: make([]string, len(p.Images))}
		for u, im := range p.Images {
			pv.InputImageURLs[u] = im.InputURL
			switch im.State {
			case "done":
				pv.OutputImageURLs[u] = im.OutputURL
				if r.Sizing != nil {
					o := wire.ImageOutputs{Index: u, Width: im.Width, Height: im.Height}
					for _, sz := range im.Sizes {
						if o.Sizes == nil {
							o.Sizes = map[string]wire.Size{}
						}
						o.Sizes[sz.Name] = sz
					}
					pv.Outputs = append(pv.Outputs, o)
				}
			case "failed":
				pv.Errors = append(pv.Errors, wire.ImageError{Index: u, InputURL: im.InputURL, Reason: im.Reason, Message: im.Message})
			}
		}
		out[i] = pv
	}
	return out, nil
}

// Report writes the request as CSV: Serial Number, Product Name, Input
// Image URLs, Output Image URLs, then one "Output Image URLs (name)" column
// per extra size the request asked for, in input order, URL lists
// comma-separated and aligned (an empty entry where an image failed or is
// pending). It streams page by page, so its memory does not grow with the
// request.
func (s *Service) Report(ctx context.Context, id, owner string, w io.Writer) error {
	r, err := s.getOwned(ctx, id, owner)
	if err != nil {
		return err
	}
	var sizes []batch.Size
	if r.Sizing != nil {
		sizes = r.Sizing.Sizes
	}
	cw := csv.NewWriter(w)
	header := []string{batch.ColSerial, batch.ColName, batch.ColURLs, "Output Image URLs"}
	for _, sz := range sizes {
		header = append(header, "Output Image URLs ("+sz.Name+")")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	for from := 0; from < r.ProductCount; from += MaxPage {
		views, err := s.productViews(ctx, r, from, from+MaxPage)
		if err != nil {
			return err
		}
		for _, v := range views {
			row := []string{
				SafeCell(v.SerialNumber), SafeCell(v.ProductName),
				SafeCell(strings.Join(v.InputImageURLs, ", ")), SafeCell(strings.Join(v.OutputImageURLs, ", ")),
			}
			for _, sz := range sizes {
				row = append(row, SafeCell(strings.Join(v.SizeURLs(sz.Name), ", ")))
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	return nil
}

// SafeCell neutralises a cell a spreadsheet would run as a formula (=, +,
// -, @, tab, carriage return first) by prefixing an apostrophe.
func SafeCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
