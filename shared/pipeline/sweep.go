package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// Sweeps keeps what the sweep needs to find requests that stopped
// progressing and to decide, image by image, what to do about them.
type Sweeps interface {
	// PendingRequests returns up to limit requests that are not finished.
	PendingRequests(ctx context.Context, limit int) ([]batch.Request, error)
	// ImageStalls returns what is known of each image's deliveries.
	ImageStalls(ctx context.Context, id string, refs []batch.ImageRef) ([]batch.ImageStall, error)
	// NoteRepublished records that the images were republished at at.
	NoteRepublished(ctx context.Context, id string, refs []batch.ImageRef, at time.Time) error
	// NoteHostWait records that a delivery of the image waits d for a host
	// that asked it to: the delivery is alive though it counted no failure.
	// It returns the image's waits so far, d included, across deliveries.
	NoteHostWait(ctx context.Context, id string, ref batch.ImageRef, d time.Duration) (total time.Duration, err error)
}

// SweepSettings say when a request counts as stalled and what the sweep
// does then.
type SweepSettings struct {
	// StallAfter is how long a request may go without progress (and an
	// image without a delivery seen) before the sweep acts.
	StallAfter time.Duration
	// MaxRepublish is how often one image is republished before it is
	// recorded failed with reason stalled.
	MaxRepublish int
	// MaxRequests bounds the requests one sweep looks at, and MaxImages
	// the images it acts on; the rest wait for the next sweep.
	MaxRequests, MaxImages int
}

// SweepReport says what one sweep did.
type SweepReport struct {
	Pending     int `json:"pendingRequests"` // unfinished requests looked at
	Stalled     int `json:"stalledRequests"` // of those, without progress for the stall window
	Completed   int `json:"completedRequests"`
	InFlight    int `json:"imagesInFlight"` // images without result whose delivery was seen in the window
	Republished int `json:"imagesRepublished"`
	GaveUp      int `json:"imagesStalled"` // recorded failed, reason stalled
	Errors      int `json:"errors"`
}

// Sweep finds the unfinished requests without progress for the stall
// window and gets each moving again: an image with no result and no
// delivery seen in the window is republished, up to MaxRepublish times,
// then recorded failed (stalled). A request whose images all have results
// but whose completion was never recorded is completed. Counting stays
// exact: results are created once, whoever records them.
func (s *Service) Sweep(ctx context.Context, now time.Time) (SweepReport, error) {
	var rep SweepReport
	set := s.SweepSettings
	reqs, err := s.Sweeps.PendingRequests(ctx, max(1, set.MaxRequests))
	if err != nil {
		return rep, err
	}
	rep.Pending = len(reqs)
	quietSince := now.Add(-set.StallAfter)
	budget := max(1, set.MaxImages)
	var errs []error
	for _, r := range reqs {
		if budget <= 0 {
			break
		}
		if err := s.sweepOne(ctx, r, quietSince, now, &budget, &rep); err != nil {
			errs = append(errs, fmt.Errorf("request %s: %w", r.ID, err))
		}
	}
	rep.Errors = len(errs)
	// The line the stalled-sweep alert of terraform/monitoring.tf reads.
	logSweep(s.Log, rep)
	return rep, errors.Join(errs...)
}

// SweepRequest sweeps one request, as Sweep would: what an operator runs
// for a request that seems stuck, without waiting for the next sweep.
func (s *Service) SweepRequest(ctx context.Context, id string, now time.Time) (SweepReport, error) {
	var rep SweepReport
	r, err := s.Requests.GetRequest(ctx, id)
	if err != nil || r.Status != batch.Pending {
		return rep, err
	}
	rep.Pending = 1
	budget := max(1, s.SweepSettings.MaxImages)
	err = s.sweepOne(ctx, r, now.Add(-s.SweepSettings.StallAfter), now, &budget, &rep)
	if err != nil {
		rep.Errors = 1
	}
	logSweep(s.Log.With("requestId", id), rep)
	return rep, err
}

// logSweep logs what a sweep did.
func logSweep(l *slog.Logger, rep SweepReport) {
	l.Info("sweep finished", "pendingRequests", rep.Pending, "stalledRequests", rep.Stalled,
		"completedRequests", rep.Completed, "imagesInFlight", rep.InFlight, "imagesRepublished", rep.Republished,
		"imagesStalled", rep.GaveUp, "errors", rep.Errors)
}

// sweepOne acts on request r if it made no progress since quietSince.
func (s *Service) sweepOne(ctx context.Context, r batch.Request, quietSince, now time.Time, budget *int, rep *SweepReport) error {
	if r.CreatedAt.After(quietSince) {
		return nil
	}
	c, updated, err := s.Completions.Counts(ctx, r)
	if err != nil || updated.After(quietSince) {
		return err
	}
	rep.Stalled++
	if !c.Finished() {
		if err := s.sweepRequest(ctx, r, quietSince, now, budget, rep); err != nil {
			return err
		}
	}
	finished, err := s.finishIfDone(ctx, r, "")
	if finished && err == nil {
		rep.Completed++
	}
	return err
}

// stalledImage is an image without a result, as the sweep found it.
type stalledImage struct {
	ref batch.ShardedRef
	url string
}

// sweepRequest acts on the images of r that have no result.
func (s *Service) sweepRequest(ctx context.Context, r batch.Request, quietSince, now time.Time, budget *int, rep *SweepReport) error {
	missing, err := s.imagesWithoutResult(ctx, r, *budget)
	if err != nil {
		return err
	}
	refs := make([]batch.ImageRef, len(missing))
	for i, m := range missing {
		refs[i] = m.ref.ImageRef
	}
	stalls, err := s.Sweeps.ImageStalls(ctx, r.ID, refs)
	if err != nil {
		return err
	}
	// Decided per URL: an image and its copies share one message, whose
	// deliveries are seen on the image alone.
	type group struct {
		url         string
		refs        []batch.ShardedRef
		seen        time.Time
		republished int
	}
	groups := map[[16]byte]*group{}
	var order []*group
	for i, im := range missing {
		k := urlKey(im.url)
		g, ok := groups[k]
		if !ok {
			g = &group{url: im.url}
			groups[k] = g
			order = append(order, g)
		}
		g.refs = append(g.refs, im.ref)
		if stalls[i].SeenAt.After(g.seen) {
			g.seen = stalls[i].SeenAt
		}
		g.republished = max(g.republished, stalls[i].Republished)
	}
	var again []*group
	var againRefs []batch.ImageRef
	republished := 0 // the highest republishing among them
	var gaveUp []batch.ShardedRef
	for _, g := range order {
		switch {
		case g.seen.After(quietSince):
			rep.InFlight += len(g.refs)
		case g.republished < s.SweepSettings.MaxRepublish:
			again = append(again, g)
			for _, r := range g.refs {
				againRefs = append(againRefs, r.ImageRef)
			}
			republished = max(republished, g.republished+1)
		default:
			gaveUp = append(gaveUp, g.refs...)
		}
	}
	*budget -= len(againRefs) + len(gaveUp)
	log := s.Log.With("requestId", r.ID)
	if len(againRefs)+len(gaveUp) > 0 {
		// The line the stalled-request alert of terraform/monitoring.tf reads.
		log.Warn("request stalled", "imagesWithoutResult", len(missing), "republish", len(againRefs), "giveUp", len(gaveUp),
			"quietSince", quietSince.UTC().Format(time.RFC3339))
	}
	if len(again) > 0 {
		// Noted before publishing: a sweep that dies after publishing
		// must not let the next one republish without counting.
		if err := s.Sweeps.NoteRepublished(ctx, r.ID, againRefs, now); err != nil {
			return err
		}
		base := queue.ImageMessage{RequestID: r.ID, Quality: r.Quality, Sizing: r.Sizing, Republished: republished}
		var msgs []queue.ImageMessage
		for _, g := range again {
			msgs = append(msgs, groupMessages(base, g.url, g.refs)...)
		}
		unsent, err := s.publish(ctx, msgs)
		rep.Republished += len(againRefs)
		for _, m := range unsent {
			rep.Republished -= 1 + len(m.Copies)
		}
		if err != nil {
			// Left to the next sweep, which republishes them again
			// (noted) or gives up on them.
			log.Error("republish failed", "unpublished", len(unsent), "error", err.Error())
		}
	}
	if len(gaveUp) > 0 {
		res := batch.ImageResult{State: batch.ImageFailed, Reason: batch.ReasonStalled, FinishedAt: now.UTC(),
			Error: fmt.Sprintf("no result and no delivery for %s after %d republishings", s.SweepSettings.StallAfter, s.SweepSettings.MaxRepublish)}
		n, err := s.Results.FinishCopies(ctx, r.ID, gaveUp, res)
		rep.GaveUp += n
		if err != nil {
			return err
		}
		for _, g := range gaveUp {
			ImageLog(s.Log, queue.ImageMessage{RequestID: r.ID, Image: g.ImageRef}).Info("image failed", "reason", batch.ReasonStalled, "error", res.Error)
		}
	}
	return nil
}

// imagesWithoutResult lists up to limit images of r that have no result,
// in input order, with their URLs and shards.
func (s *Service) imagesWithoutResult(ctx context.Context, r batch.Request, limit int) ([]stalledImage, error) {
	var out []stalledImage
	image := 0 // running index of the chunk's first image
	for ci, start := range r.ChunkStarts {
		end := r.ChunkEnd(ci)
		products, err := s.Requests.Products(ctx, r, start, end)
		if err != nil {
			return nil, err
		}
		results, err := s.Results.Results(ctx, r.ID, start, products)
		if err != nil {
			return nil, err
		}
		for i, p := range products {
			for u, url := range p.InputURLs {
				ref := batch.ImageRef{Product: start + i, URL: u}
				shard := batch.ImageShard(image, r.Shards)
				image++
				if _, done := results[ref]; done {
					continue
				}
				out = append(out, stalledImage{ref: batch.ShardedRef{ImageRef: ref, Shard: shard}, url: url})
				if len(out) >= limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}
