package pipeline

import (
	"cmp"
	"context"
	"math"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/wire"
)

// ImageView is one image as the status page shows it.
type ImageView struct {
	Ref          batch.ImageRef
	InputURL     string
	State        string // "done", "failed" or "pending"
	InputBytes   int64
	OutputBytes  int64
	SavedPercent float64
	OutputURL    string
	Reason       string // the code, for failed images
	ReasonText   string // the code in words
	Message      string // what failed, in detail
	// Width and Height are the main output's, once the image is done;
	// Sizes its extra outputs, in the request's order.
	Width, Height int
	Sizes         []wire.Size
	// ThumbImage is the image whose thumbnail shows this one: itself, or
	// the image whose output it shares; "" when it has none.
	ThumbImage string
}

// ProductPage is one product with its images, as the status page shows it.
type ProductPage struct {
	Index        int
	SerialNumber string
	ProductName  string
	Images       []ImageView
}

// PageProducts returns products [from, to) of request r with each image's
// outcome: what the status page shows, and what the status and the report
// are made from. It reads only those products and their results.
func (s *Service) PageProducts(ctx context.Context, r batch.Request, from, to int) ([]ProductPage, error) {
	products, err := s.Requests.Products(ctx, r, from, to)
	if err != nil {
		return nil, err
	}
	results, err := s.Results.Results(ctx, r.ID, from, products)
	if err != nil {
		return nil, err
	}
	out := make([]ProductPage, len(products))
	for i, p := range products {
		pp := ProductPage{Index: from + i, SerialNumber: p.SerialNumber, ProductName: p.ProductName}
		for u, in := range p.InputURLs {
			ref := batch.ImageRef{Product: from + i, URL: u}
			iv := ImageView{Ref: ref, InputURL: in, State: "pending"}
			if res, ok := results[ref]; ok {
				switch res.State {
				case batch.ImageDone:
					link, err := s.outputURL(res.Object)
					if err != nil {
						return nil, err
					}
					iv.State, iv.InputBytes, iv.OutputBytes, iv.OutputURL = "done", res.InputBytes, res.OutBytes, link
					iv.Width, iv.Height = res.Width, res.Height
					if res.Thumb != "" {
						iv.ThumbImage = cmp.Or(res.SameAs, ref.ID())
					}
					for _, o := range res.Sizes {
						if link, err = s.outputURL(o.Object); err != nil {
							return nil, err
						}
						iv.Sizes = append(iv.Sizes, wire.Size{Name: o.Name, URL: link, Width: o.Width, Height: o.Height, OutputBytes: o.OutBytes})
					}
					if res.InputBytes > 0 {
						iv.SavedPercent = math.Round(1000*float64(res.InputBytes-res.OutBytes)/float64(res.InputBytes)) / 10
					}
				default:
					iv.State, iv.Reason, iv.ReasonText, iv.Message = "failed", res.Reason, batch.ReasonText(res.Reason), res.Error
				}
			}
			pp.Images = append(pp.Images, iv)
		}
		out[i] = pp
	}
	return out, nil
}

// outputURL is the link to an output object; a link that cannot be made
// is a transient failure of the whole answer (the caller retries), never
// an empty link.
func (s *Service) outputURL(object string) (string, error) {
	u, err := s.Bucket.URL(object)
	if err != nil {
		return "", fault.Wrap(fault.Transient, "", err, "making the link to an output")
	}
	return u, nil
}

// Request reads a request (no owner check: the caller has checked access
// its own way, as the status page does with its signed link).
func (s *Service) Request(ctx context.Context, id string) (batch.Request, error) {
	return s.Requests.GetRequest(ctx, id)
}
