// Package pipeline is imgpipe's main job, written against small interfaces:
// accept a submission (record it, then fan it out), compress one image
// (fetch, compress, store, count exactly once), finish a request exactly
// once, and read a request back as status or report.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// Requests keeps requests and their products.
type Requests interface {
	// Stage starts storing the products of a new request with ID id.
	Stage(ctx context.Context, id string) batch.Staging
	GetRequest(ctx context.Context, id string) (batch.Request, error)
	// Products returns products [from, to) in input order.
	Products(ctx context.Context, r batch.Request, from, to int) ([]batch.Product, error)
}

// Results keeps each image's outcome, recorded once, and counts it.
type Results interface {
	// FinishImage records res for the image and counts it in its shard, in
	// one step: first is false when the image had a result already, and
	// then nothing changes.
	FinishImage(ctx context.Context, id string, ref batch.ImageRef, shard int, res batch.ImageResult) (first bool, err error)
	// FinishCopies records res for each image of refs that has no result
	// yet, counting each in its shard, and returns how many it recorded.
	// Like FinishImage it never counts an image twice.
	FinishCopies(ctx context.Context, id string, refs []batch.ShardedRef, res batch.ImageResult) (recorded int, err error)
	ImageResult(ctx context.Context, id string, ref batch.ImageRef) (batch.ImageResult, bool, error)
	// Results returns the recorded results of products[i] (product index
	// first+i).
	Results(ctx context.Context, id string, first int, products []batch.Product) (map[batch.ImageRef]batch.ImageResult, error)
	// CountAttempt counts one failed attempt at an image and returns the
	// count so far, across deliveries and instances.
	CountAttempt(ctx context.Context, id string, ref batch.ImageRef) (int, error)
}

// Completions finishes a request exactly once.
type Completions interface {
	// ShardFinished reports whether every image of the shard has a result.
	ShardFinished(ctx context.Context, id string, shard int) (bool, error)
	Counts(ctx context.Context, r batch.Request) (batch.Counts, time.Time, error)
	// Complete records the completion once: won is true for the one call
	// that created it; every call gets the record.
	Complete(ctx context.Context, r batch.Request, c batch.Counts) (won bool, comp batch.Completion, err error)
	HookFired(ctx context.Context, id string) error
}

// WebhookLog keeps the state and the attempts of a request's webhook.
type WebhookLog interface {
	StartWebhook(ctx context.Context, id string) error
	GetWebhookState(ctx context.Context, id string) (batch.WebhookState, bool, error)
	// RecordWebhookAttempt records attempt a under key once: first is
	// false for a repeat of the same attempt.
	RecordWebhookAttempt(ctx context.Context, id, key string, a batch.WebhookAttempt) (first bool, err error)
	NextRedelivery(ctx context.Context, id string) (int, error)
}

// Publisher fans image messages out.
type Publisher interface {
	PublishAll(ctx context.Context, msgs []queue.ImageMessage) (failed []int, err error)
}

// Bucket stores outputs and links to them. URL fails when a link cannot
// be made (a signing failure): an output is never shown without its link.
type Bucket interface {
	Put(ctx context.Context, name string, data []byte) error
	URL(name string) (string, error)
}

// ThumbStore keeps private objects: the status page's thumbnails.
type ThumbStore interface {
	Put(ctx context.Context, name string, data []byte) error
}

// Fetcher gets a user's image through the outbound guard.
type Fetcher interface {
	Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error)
}

// AdmittingFetcher is a Fetcher that waits for its host's turn (its
// per-host cap) before it calls admit, once, just before the request goes
// out: a fetch queued behind its host then holds none of the instance's
// fetch slots. The pipeline uses FetchAdmitted when its Fetcher has it.
type AdmittingFetcher interface {
	FetchAdmitted(ctx context.Context, url string, maxBytes int64, admit func(context.Context) error) ([]byte, error)
}

// CompletionHook is told once that a request finished (the webhook goes
// out from here). It must be idempotent: after a crash it may run again.
type CompletionHook interface {
	RequestFinished(ctx context.Context, r batch.Request, c batch.Counts) error
}

// Service runs the pipeline.
type Service struct {
	Requests    Requests
	Results     Results
	Completions Completions
	WebhookLog  WebhookLog
	Sweeps      Sweeps
	Publisher   Publisher
	Bucket      Bucket
	// Thumbs keeps each image's thumbnail for the status page, made when
	// the image is compressed; nil makes none.
	Thumbs   ThumbStore
	Fetcher  Fetcher
	Hook     CompletionHook
	Webhooks Webhooks
	Log      *slog.Logger

	MaxImageBytes       int64
	ImageLimits         imagework.Limits
	MaxDeliveryAttempts int
	// ProcessTimeout bounds one delivery's work (fetch, compress, store,
	// count): below the subscription's ack deadline, so no stuck call holds
	// a compression slot or outlives its delivery.
	ProcessTimeout time.Duration
	// FetchBudget is the most one fetch can take (the fetcher's timeout):
	// a retry starts only if the delivery has that much time left.
	FetchBudget time.Duration
	// MaxHostWait caps the time one image waits for image hosts that asked
	// to be left alone (429 or 503 with Retry-After), summed over its
	// deliveries; past it the image is recorded failed (host_throttled).
	// Zero means DefaultMaxHostWait.
	MaxHostWait time.Duration
	// HookGrace is how long a completion's hook may stay unconfirmed before
	// a redelivery fires it again (its first firer presumably died).
	HookGrace time.Duration
	// SweepSettings govern Sweep.
	SweepSettings SweepSettings
	// sem bounds concurrent compressions on this instance: the memory and
	// CPU of decoding and encoding. An image takes a compression slot only
	// once its bytes are fetched, so an image whose host makes it wait
	// holds none.
	sem chan struct{}
	// fetching bounds the images this instance fetches or holds fetched
	// bytes of (up to MaxImageBytes each): taken just before each fetch
	// try, given back when the try fails (so no wait for a host holds
	// one), else kept until the image is done. Twice the compression
	// slots, so fetches overlap compressions.
	fetching chan struct{}
}

// DefaultMaxHostWait is MaxHostWait when it is zero.
const DefaultMaxHostWait = 2 * time.Minute

// SetConcurrency bounds how many images this instance compresses at once
// (n), and how many it fetches or holds fetched (2n).
func (s *Service) SetConcurrency(n int) {
	n = max(1, n)
	s.sem = make(chan struct{}, n)
	s.fetching = make(chan struct{}, 2*n)
}

// NewRequestID returns an unguessable ID: 128 random bits, base32.
func NewRequestID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// NewUpload starts an upload under a new request ID: its products are
// stored as they are read (Staging.Add), then Submit commits them. Its URLs
// are indexed as they come, so that each distinct URL is fetched once.
func (s *Service) NewUpload(ctx context.Context) batch.Staging {
	return &indexingStaging{Staging: s.Requests.Stage(ctx, NewRequestID()), index: newURLIndex()}
}

// Submit commits a validated upload whose products st (from NewUpload)
// holds (sub gives its options; sub.Products, when set, are added first)
// and publishes one message per distinct URL, its repeats as the message's
// copies, reading the products back a chunk at a time, so memory does not
// grow with the upload beyond the URL index. The request and its products
// are stored before the first publish. Images whose messages cannot be
// published are recorded as failed (publish_failed), so the request still
// finishes with exact counts, and the caller gets a transient error naming
// how many.
func (s *Service) Submit(ctx context.Context, st batch.Staging, sub batch.Submission, owner, baseURL string) (batch.Request, error) {
	is, ok := st.(*indexingStaging)
	if !ok {
		st.Discard(ctx)
		return batch.Request{ID: st.ID()}, fmt.Errorf("pipeline.Submit: the upload was not started by NewUpload")
	}
	for _, p := range sub.Products {
		if err := st.Add(p); err != nil {
			st.Discard(ctx)
			return batch.Request{ID: st.ID()}, err
		}
	}
	var sizing *batch.Sizing
	if !sub.Sizing.IsZero() {
		sizing = &sub.Sizing
	}
	r, err := st.Commit(ctx, batch.Request{BaseURL: baseURL, Quality: sub.Quality, WebhookURL: sub.WebhookURL, Owner: owner, Sizing: sizing})
	if err != nil {
		return r, err
	}
	idx := is.index
	idx.setShards(r.Shards)
	base := queue.ImageMessage{RequestID: r.ID, Quality: r.Quality, Sizing: sizing, Trace: sub.Trace}
	var unsent []queue.ImageMessage // only refs, shards and copies are kept
	var lastErr error
	next := 0 // the first of idx.firsts not yet published
	for ci, start := range r.ChunkStarts {
		end := r.ChunkEnd(ci)
		var products []batch.Product
		err := retryTransient(ctx, func() (err error) {
			products, err = s.Requests.Products(ctx, r, start, end)
			return err
		})
		if err == nil && len(products) != end-start {
			err = fmt.Errorf("store.Products: %d products of [%d, %d)", len(products), start, end)
		}
		// The first occurrences of URLs in this chunk, each with its
		// repeats (which may lie in any later chunk).
		var msgs []queue.ImageMessage
		for ; next < len(idx.firsts) && idx.firsts[next].Product < end; next++ {
			f := idx.firsts[next]
			url := ""
			if err == nil {
				url = products[f.Product-start].InputURLs[f.URL]
			}
			group := append([]batch.ShardedRef{f}, idx.copies[int32(next)]...)
			if err != nil {
				unsent = append(unsent, groupMessages(base, url, group)...)
				continue
			}
			msgs = append(msgs, groupMessages(base, url, group)...)
		}
		if err != nil {
			lastErr = err
			continue
		}
		failed, err := s.publish(ctx, msgs)
		if err != nil {
			lastErr = err
		}
		for _, m := range failed {
			m.URL = ""
			unsent = append(unsent, m)
		}
	}
	if len(unsent) == 0 {
		withTrace(s.Log, sub.Trace).Info("request accepted", "requestId", r.ID, "images", r.TotalImages,
			"products", r.ProductCount, "distinctUrls", len(idx.firsts))
		return r, nil
	}
	// Never leave the request waiting for messages that do not exist.
	unsentImages := 0
	for _, m := range unsent {
		unsentImages += 1 + len(m.Copies)
		res := batch.ImageResult{State: batch.ImageFailed, Reason: batch.ReasonPublishFailed, Error: "the image could not be queued: " + fmt.Sprint(lastErr), FinishedAt: time.Now().UTC()}
		if err := s.record(ctx, m, res); err != nil {
			return r, err
		}
		if err := s.checkCompletion(ctx, m); err != nil {
			return r, err
		}
	}
	s.Log.Error("publish failed", "requestId", r.ID, "unpublished", unsentImages, "error", fmt.Sprint(lastErr))
	return r, fault.Wrap(fault.Transient, batch.ReasonPublishFailed, lastErr,
		"request %s: %d of %d images could not be queued and are recorded as failed", r.ID, unsentImages, r.TotalImages)
}

// record stores res as the outcome of m's image and of its copies: the
// copies first, so that once the image itself has its result, every copy
// has one too (a redelivery looks at the image only).
func (s *Service) record(ctx context.Context, m queue.ImageMessage, res batch.ImageResult) error {
	if len(m.Copies) > 0 {
		cp := res
		cp.SameAs = m.Image.ID()
		if err := retryTransient(ctx, func() error {
			_, err := s.Results.FinishCopies(ctx, m.RequestID, m.Copies, cp)
			return err
		}); err != nil {
			return err
		}
	}
	return retryTransient(ctx, func() error {
		_, err := s.Results.FinishImage(ctx, m.RequestID, m.Image, m.Shard, res)
		return err
	})
}

// publish publishes msgs in up to three rounds and returns those that
// still failed, with the last error.
func (s *Service) publish(ctx context.Context, msgs []queue.ImageMessage) (unsent []queue.ImageMessage, lastErr error) {
	pending := msgs
	for round := 0; round < 3 && len(pending) > 0; round++ {
		if round > 0 {
			time.Sleep(time.Duration(round) * 500 * time.Millisecond)
		}
		failed, err := s.Publisher.PublishAll(ctx, pending)
		lastErr = err
		next := make([]queue.ImageMessage, 0, len(failed))
		for _, i := range failed {
			next = append(next, pending[i])
		}
		pending = next
	}
	return pending, lastErr
}

// Compress handles one delivery of an image message. It returns an error
// only when the delivery should be retried; a permanent failure, or a
// transient one on the last allowed attempt, is recorded and acknowledged.
// attempt is the delivery attempt (1 = first), 0 when unknown.
func (s *Service) Compress(ctx context.Context, m queue.ImageMessage, attempt int) error {
	if s.ProcessTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.ProcessTimeout)
		defer cancel()
	}
	// A known redelivery (attempt 2 on) looks for the image's result first:
	// a duplicate counts already, though finishing the request may still be
	// owed if the first delivery died after counting. Other deliveries skip
	// the read, and that is nearly all of them: functions-framework does not
	// pass Pub/Sub's delivery attempt on (attempt 0). Should one be a
	// duplicate all the same, it costs a fetch and a compression, no count:
	// its result is not stored twice (FinishImage creates it once), the
	// object it writes is the same, and completion is checked as usual. A
	// message the sweep republished may duplicate one still queued, so it
	// looks too.
	if attempt > 1 || m.Republished > 0 {
		var done bool
		if err := retryTransient(ctx, func() (err error) {
			_, done, err = s.Results.ImageResult(ctx, m.RequestID, m.Image)
			return err
		}); err != nil {
			return err
		} else if done {
			return s.checkCompletion(ctx, m)
		}
	}
	log := ImageLog(s.Log, m).With("attempt", attempt)
	start := time.Now()
	a := attempts{n: attempt}
	var ph phases
	res, err := s.process(ctx, m, &a, &ph)
	if err != nil && fault.Retryable(err) && !a.counted {
		s.countAttempt(ctx, m, &a)
	}
	attempt = a.n
	if err != nil {
		last := s.lastAttempt(attempt)
		if fault.Retryable(err) && !last {
			log.Warn("image failed, will retry", "reason", fault.ReasonOf(err), "error", err.Error())
			return err
		}
		res = batch.ImageResult{State: batch.ImageFailed, Reason: fault.ReasonOf(err), Error: err.Error(), Attempt: attempt, FinishedAt: time.Now().UTC()}
		log.Info("image failed", "reason", res.Reason, "error", res.Error)
	}
	recording := time.Now()
	if err := s.record(ctx, m, res); err != nil {
		return err
	}
	if res.State == batch.ImageDone {
		// The line the log-based metrics of terraform/monitoring.tf read:
		// images compressed, bytes saved, time per image, and where that
		// time went (waiting for a compression slot, fetching, compressing,
		// storing the output, recording and counting the result). copies
		// are the request's other images of the same URL, sharing this output.
		log.Info("image compressed", "inputBytes", res.InputBytes, "outBytes", res.OutBytes,
			"savedBytes", res.InputBytes-res.OutBytes, "durationMs", time.Since(start).Milliseconds(), "codec", res.Codec,
			"copies", len(m.Copies), "slotMs", ph.slot.Milliseconds(), "fetchMs", ph.fetch.Milliseconds(),
			"compressMs", ph.compress.Milliseconds(), "storeMs", ph.store.Milliseconds(), "recordMs", time.Since(recording).Milliseconds())
	}
	return s.checkCompletion(ctx, m)
}

// retryTransient retries fn while it fails transiently, for up to 20 s
// within ctx: a short Firestore or storage outage is ridden out in the
// delivery, instead of becoming a nack (Pub/Sub slows a subscription's
// pushes after failures).
func retryTransient(ctx context.Context, fn func() error) error {
	delay := 250 * time.Millisecond
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := fn()
		if err == nil || fault.KindOf(err) != fault.Transient || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, 4*time.Second)
	}
}

// DeadLetter records an image whose message exhausted its deliveries.
func (s *Service) DeadLetter(ctx context.Context, m queue.ImageMessage, attempts int) error {
	res := batch.ImageResult{State: batch.ImageFailed, Reason: batch.ReasonDeadLettered,
		Error: fmt.Sprintf("gave up after %d delivery attempts", attempts), Attempt: attempts, FinishedAt: time.Now().UTC()}
	if err := s.record(ctx, m, res); err != nil {
		return err
	}
	return s.checkCompletion(ctx, m)
}

// attempts tracks one image's failed attempts during a delivery: n is the
// highest count known; counted says the latest failure needs no counting
// any more, because it is in n or because it was a host asking to wait,
// which is no failure.
type attempts struct {
	n       int
	counted bool
}

// countAttempt records one failed attempt in the store, which counts across
// deliveries and function instances.
func (s *Service) countAttempt(ctx context.Context, m queue.ImageMessage, a *attempts) {
	if n, err := s.Results.CountAttempt(ctx, m.RequestID, m.Image); err == nil {
		a.n = max(a.n, n)
	}
	a.counted = true
}

func (s *Service) lastAttempt(n int) bool {
	return s.MaxDeliveryAttempts > 0 && n >= s.MaxDeliveryAttempts
}

// fetch gets the image, retrying transient failures (503, timeout, refused
// connection) inside this delivery with backoff from 1 s, each try counted
// as an attempt. It gives up when the attempts are spent or the delivery's
// time would not cover another try; the caller then records the failure or
// asks for a redelivery. Retrying here rather than by nacking keeps hopeless
// URLs from turning into bursts of failed pushes, after which Pub/Sub slows
// the whole subscription.
//
// A host that asks to be left alone (429 or 503 with Retry-After) is
// waited for, and the wait is no failed attempt. Every wait is added to
// the image's record (Sweeps.NoteHostWait, which also tells the sweep the
// delivery is alive), and once the sum over its deliveries would pass
// MaxHostWait the image fails with reason host_throttled: a Retry-After
// longer than the cap fails it at once. A wait within the cap but longer
// than this delivery has time for is charged in full and becomes a
// redelivery; Pub/Sub may bring it back sooner than the host asked, but
// each redelivery the host sends away again is charged again, so a host
// that keeps asking costs at most a few deliveries, never a nack loop that
// ends dead-lettered.
//
// No wait holds a slot: a fetch try takes a fetch slot (s.fetching) and
// gives it back when it fails; on success the slot is kept, and release
// gives it back once the image is done.
func (s *Service) fetch(ctx context.Context, m queue.ImageMessage, a *attempts) (in []byte, release func(), err error) {
	delay := time.Second
	var waited time.Duration // this delivery's waits for the host
	for {
		a.counted = false
		in, release, err = s.fetchOnce(ctx, m.URL)
		if err == nil || !fault.Retryable(err) || ctx.Err() != nil {
			return in, release, err
		}
		wait := retryAfterOf(err)
		throttled := wait > 0
		if throttled {
			a.counted = true // asked to wait, not failed
			waited += wait
			if err := s.noteHostWait(ctx, m, wait, waited, err); err != nil {
				return nil, nil, err
			}
		} else {
			wait = delay
			s.countAttempt(ctx, m, a)
			if s.lastAttempt(a.n) {
				return nil, nil, err
			}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+s.FetchBudget {
			return nil, nil, err
		}
		ImageLog(s.Log, m).Warn("fetch failed, retrying", "attempt", a.n, "reason", fault.ReasonOf(err), "error", err.Error(), "retryIn", wait.String(), "throttled", throttled)
		select {
		case <-ctx.Done():
			return nil, nil, err
		case <-time.After(wait):
		}
		if !throttled {
			delay = min(2*delay, 8*time.Second)
		}
	}
}

// noteHostWait adds wait, which a host asked for, to the image's waits and
// returns a permanent host_throttled failure when they would pass the cap.
// waited is this delivery's waits, wait included, the sum used when the
// record fails; cause is the host's answer.
func (s *Service) noteHostWait(ctx context.Context, m queue.ImageMessage, wait, waited time.Duration, cause error) error {
	limit := s.MaxHostWait
	if limit <= 0 {
		limit = DefaultMaxHostWait
	}
	if wait > limit {
		return fault.Wrap(fault.Permanent, batch.ReasonHostThrottled, cause,
			"the image host asked to wait %s (Retry-After); an image waits at most %s for its host", wait, limit)
	}
	total, err := s.Sweeps.NoteHostWait(ctx, m.RequestID, m.Image, wait)
	if err != nil {
		ImageLog(s.Log, m).Warn("recording a wait for the image host", "error", err.Error())
	}
	if total = max(total, waited); total > limit {
		return fault.Wrap(fault.Permanent, batch.ReasonHostThrottled, cause,
			"the image host asked to wait %s more (Retry-After) after %s of waits; an image waits at most %s for its host", wait, total-wait, limit)
	}
	return nil
}

// fetchOnce is one fetch try inside a fetch slot: taken when the host lets
// the fetch through (AdmittingFetcher) or else before it, given back when
// the try fails; on success release gives it back.
func (s *Service) fetchOnce(ctx context.Context, url string) (in []byte, release func(), err error) {
	held := false
	admit := func(ctx context.Context) error {
		if s.fetching == nil {
			return nil
		}
		select {
		case s.fetching <- struct{}{}:
			held = true
			return nil
		case <-ctx.Done():
			return fault.Wrap(fault.Transient, batch.ReasonCanceled, ctx.Err(), "waiting for a fetch slot")
		}
	}
	release = func() {
		if held {
			held = false
			<-s.fetching
		}
	}
	if af, ok := s.Fetcher.(AdmittingFetcher); ok {
		in, err = af.FetchAdmitted(ctx, url, s.MaxImageBytes, admit)
	} else if err = admit(ctx); err == nil {
		in, err = s.Fetcher.Fetch(ctx, url, s.MaxImageBytes)
	}
	if err != nil {
		release()
		return nil, nil, err
	}
	return in, release, nil
}

// ImageLog is l for the lines of one image: its request ID, image ID and,
// when its upload had one, the trace.
func ImageLog(l *slog.Logger, m queue.ImageMessage) *slog.Logger {
	return withTrace(l, m.Trace).With("requestId", m.RequestID, "image", m.Image.ID())
}

// withTrace is l with the trace field, when there is a trace.
func withTrace(l *slog.Logger, trace string) *slog.Logger {
	if trace == "" {
		return l
	}
	return l.With(TraceKey, trace)
}

// TraceKey is the field of a structured log line that Cloud Logging reads
// as the entry's trace, linking the lines of one upload and its images.
const TraceKey = "logging.googleapis.com/trace"

// retryAfterOf is how long the failure asks to wait before the next try.
func retryAfterOf(err error) time.Duration {
	var fe *fault.Error
	if errors.As(err, &fe) {
		return fe.RetryAfter
	}
	return 0
}

// phases are where one delivery's time went.
type phases struct {
	slot, fetch, compress, store time.Duration
}

// process fetches, compresses and stores one image.
func (s *Service) process(ctx context.Context, m queue.ImageMessage, a *attempts, ph *phases) (batch.ImageResult, error) {
	t := time.Now()
	lap := func(d *time.Duration) {
		now := time.Now()
		*d, t = now.Sub(t), now
	}
	// Fetched first, then compressed in a compression slot: no wait for a
	// host holds one (see fetch for the fetch slot the bytes are held in).
	in, release, err := s.fetch(ctx, m, a)
	if err != nil {
		return batch.ImageResult{}, err
	}
	defer release()
	lap(&ph.fetch)
	if s.sem != nil {
		select {
		case s.sem <- struct{}{}:
			defer func() { <-s.sem }()
		case <-ctx.Done():
			return batch.ImageResult{}, fault.Wrap(fault.Transient, batch.ReasonCanceled, ctx.Err(), "waiting for a compression slot")
		}
	}
	lap(&ph.slot)
	var main imagework.Box
	var boxes []imagework.Box
	if z := m.Sizing; z != nil {
		main = imagework.Box{Width: z.MaxWidth, Height: z.MaxHeight}
		for _, sz := range z.Sizes {
			boxes = append(boxes, imagework.Box{Width: sz.Width, Height: sz.Height})
		}
	}
	var out imagework.Result
	var extra []imagework.Result
	var thumb []byte
	if s.Thumbs != nil {
		out, extra, thumb, err = imagework.SizedWithThumbnail(in, m.Quality, s.ImageLimits, main, boxes, ThumbSide)
	} else {
		out, extra, err = imagework.Sized(in, m.Quality, s.ImageLimits, main, boxes)
	}
	if err != nil {
		return batch.ImageResult{}, err
	}
	lap(&ph.compress)
	res := batch.ImageResult{
		State: batch.ImageDone, Object: batch.ObjectName(m.RequestID, m.Image), InputBytes: int64(len(in)), OutBytes: int64(len(out.JPEG)),
		KeptInput: out.KeptInput, Codec: out.Path, Format: out.Format, Width: out.Width, Height: out.Height,
	}
	// The thumbnail and the extra outputs first: once the main output
	// exists, so do they.
	if thumb != nil {
		res.Thumb = s.storeThumb(ctx, m, thumb)
	}
	for i, e := range extra {
		sz := m.Sizing.Sizes[i]
		o := batch.SizeOutput{Name: sz.Name, Object: batch.SizeObjectName(m.RequestID, m.Image, sz.Name), Width: e.Width, Height: e.Height, OutBytes: int64(len(e.JPEG))}
		if err := retryTransient(ctx, func() error { return s.Bucket.Put(ctx, o.Object, e.JPEG) }); err != nil {
			return batch.ImageResult{}, err
		}
		res.Sizes = append(res.Sizes, o)
	}
	if err := retryTransient(ctx, func() error { return s.Bucket.Put(ctx, res.Object, out.JPEG) }); err != nil {
		return batch.ImageResult{}, err
	}
	lap(&ph.store)
	res.FinishedAt = time.Now().UTC()
	return res, nil
}

// ThumbSide is the longest side of an image's thumbnail, in pixels. The
// thumbnail is made with the outputs, from their decode, at the request's
// quality (imagework.SizedWithThumbnail); it shows what the output shows,
// so the status page needs no other picture of the image.
const ThumbSide = 160

// storeThumb stores an image's thumbnail in the private store and returns
// its object name, or "" when it could not be stored. The thumbnail is not
// the product: a failure that outlasts the retries is logged, and the image
// is stored and counted all the same (its page then shows no thumbnail),
// rather than failed, or fetched and compressed again, for a picture of it.
func (s *Service) storeThumb(ctx context.Context, m queue.ImageMessage, thumb []byte) string {
	name := batch.ThumbObjectName(m.RequestID, m.Image)
	if err := retryTransient(ctx, func() error { return s.Thumbs.Put(ctx, name, thumb) }); err != nil {
		ImageLog(s.Log, m).Warn("storing the thumbnail", "error", err.Error())
		return ""
	}
	return name
}

// checkCompletion finishes the request when m's image was the last one: the
// shard is read first (cheap), every shard only when this one is done.
// (Once every image has a result, every shard is finished, m's too.)
func (s *Service) checkCompletion(ctx context.Context, m queue.ImageMessage) error {
	done, err := s.Completions.ShardFinished(ctx, m.RequestID, m.Shard)
	if err != nil || !done {
		return err
	}
	r, err := s.Requests.GetRequest(ctx, m.RequestID)
	if err != nil {
		return err
	}
	_, err = s.finishIfDone(ctx, r, m.Trace)
	return err
}

// finishIfDone records the request's completion, once, when every image
// has a result, and fires the completion hook unless it is confirmed.
// finished reports whether every image has a result.
func (s *Service) finishIfDone(ctx context.Context, r batch.Request, trace string) (finished bool, err error) {
	c, _, err := s.Completions.Counts(ctx, r)
	if err != nil || !c.Finished() {
		return false, err
	}
	won, comp, err := s.Completions.Complete(ctx, r, c)
	if err != nil {
		return true, err
	}
	if comp.HookFired {
		return true, nil
	}
	if !won && time.Since(comp.At) < s.HookGrace {
		// The winner is firing the hook right now, or died doing it: ask
		// for a redelivery, which looks again after the grace period.
		return true, fault.New(fault.Transient, "completion_pending", "request %s: completion hook not confirmed yet", r.ID)
	}
	if won {
		withTrace(s.Log, trace).Info("request finished", "requestId", r.ID, "status", comp.Status, "processed", c.Processed, "failed", c.Failed)
	}
	r.Status = comp.Status
	if err := s.Hook.RequestFinished(ctx, r, c); err != nil {
		return true, fault.Wrap(fault.Transient, "hook_failed", err, "request %s: completion hook", r.ID)
	}
	return true, s.Completions.HookFired(ctx, r.ID)
}
