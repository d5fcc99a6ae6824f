package store

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// Firestore layout of one request (a document holds at most 1 MiB, so a
// 100k-row request is spread out):
//
//	requests/{id}                     batch.Request: totals, options, chunk index, final status
//	requests/{id}/chunks/{start}      up to ~1000 products each, in input order
//	requests/{id}/shards/{s}          counter shard: expected, processed, failed
//	requests/{id}/images/{p-u}        an image's terminal result, created exactly once
//	requests/{id}/events/completed    the completion, created exactly once
//
// An image counts when its result document is created in the same atomic
// commit as its shard's increment; a second delivery finds the document and
// changes nothing. Images of one request spread over up to batch.MaxShards shards,
// so no document takes more than its share of writes.
const (
	colRequests = "requests"
	colChunks   = "chunks"
	colShards   = "shards"
	colImages   = "images"
	colEvents   = "events"
	colAttempts = "attempts"
	docComplete = "completed"

	chunkMaxProducts = 1000
	chunkMaxBytes    = 512 << 10
)

type chunk struct {
	Start    int             `firestore:"start"`
	Products []batch.Product `firestore:"products"`
	// ExpireAt is set while the chunk is staged and cleared when its
	// request is committed: Firestore's TTL policy on chunks.expireAt
	// deletes the chunks of an upload that never committed.
	ExpireAt *time.Time `firestore:"expireAt,omitempty"`
}

// StagedChunkTTL is how long a staged chunk outlives an upload that never
// commits it.
const StagedChunkTTL = 24 * time.Hour

type shard struct {
	Expected    int       `firestore:"expected"`
	Processed   int       `firestore:"processed"`
	Failed      int       `firestore:"failed"`
	InputBytes  int64     `firestore:"inputBytes"`
	OutputBytes int64     `firestore:"outputBytes"`
	UpdatedAt   time.Time `firestore:"updatedAt"`
}

// countUpdates are the shard updates that count n images with result res.
func countUpdates(res batch.ImageResult, n int) []firestore.Update {
	counter := "processed"
	if res.State == batch.ImageFailed {
		counter = "failed"
	}
	u := []firestore.Update{
		{Path: counter, Value: firestore.Increment(n)},
		{Path: "updatedAt", Value: firestore.ServerTimestamp},
	}
	if res.State == batch.ImageDone {
		u = append(u, firestore.Update{Path: "inputBytes", Value: firestore.Increment(res.InputBytes * int64(n))},
			firestore.Update{Path: "outputBytes", Value: firestore.Increment(res.OutBytes * int64(n))})
	}
	return u
}

func chunkID(start int) string { return fmt.Sprintf("%08d", start) }
func shardID(s int) string     { return strconv.Itoa(s) }

func (s *Store) req(id string) *firestore.DocumentRef { return s.fs.Collection(colRequests).Doc(id) }

// CreateRequest records a request and its products before any image is
// published: chunks and shards first, the request document last, so a
// request that exists is complete. (Uploads stage their products as they
// are read instead; see Stage.)
func (s *Store) CreateRequest(ctx context.Context, r batch.Request, products []batch.Product) (batch.Request, error) {
	st := s.Stage(ctx, r.ID)
	for _, p := range products {
		if err := st.Add(p); err != nil {
			st.Discard(ctx)
			return r, err
		}
	}
	return st.Commit(ctx, r)
}

// GetRequest reads a request's top document.
func (s *Store) GetRequest(ctx context.Context, id string) (batch.Request, error) {
	snap, err := s.req(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return batch.Request{}, fault.New(fault.NotFound, "", "request %q not found", id)
	}
	if err != nil {
		return batch.Request{}, fault.Wrap(fault.Transient, "", err, "reading request %s", id)
	}
	var r batch.Request
	if err := snap.DataTo(&r); err != nil {
		return batch.Request{}, fmt.Errorf("firestore.DataTo: %w", err)
	}
	return r, nil
}

// Products returns products [from, to) of a request, in input order.
func (s *Store) Products(ctx context.Context, r batch.Request, from, to int) ([]batch.Product, error) {
	to = min(to, r.ProductCount)
	if from >= to {
		return nil, nil
	}
	// Chunks that overlap [from, to).
	lo := sort.Search(len(r.ChunkStarts), func(i int) bool { return r.ChunkStarts[i] > from }) - 1
	var refs []*firestore.DocumentRef
	for i := max(lo, 0); i < len(r.ChunkStarts) && r.ChunkStarts[i] < to; i++ {
		refs = append(refs, s.req(r.ID).Collection(colChunks).Doc(chunkID(r.ChunkStarts[i])))
	}
	snaps, err := s.fs.GetAll(ctx, refs)
	if err != nil {
		return nil, fault.Wrap(fault.Transient, "", err, "reading products of %s", r.ID)
	}
	var out []batch.Product
	for _, sn := range snaps {
		var c chunk
		if err := sn.DataTo(&c); err != nil {
			return nil, fmt.Errorf("firestore.DataTo: %w", err)
		}
		for i, p := range c.Products {
			if idx := c.Start + i; idx >= from && idx < to {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// Results returns the terminal results of the images of products [from, to)
// (first is the product index of products[0]); absent images are pending.
func (s *Store) Results(ctx context.Context, id string, first int, products []batch.Product) (map[batch.ImageRef]batch.ImageResult, error) {
	var refs []*firestore.DocumentRef
	var keys []batch.ImageRef
	for i, p := range products {
		for u := range p.InputURLs {
			k := batch.ImageRef{Product: first + i, URL: u}
			keys = append(keys, k)
			refs = append(refs, s.req(id).Collection(colImages).Doc(k.ID()))
		}
	}
	out := map[batch.ImageRef]batch.ImageResult{}
	for lo := 0; lo < len(refs); lo += 500 {
		hi := min(lo+500, len(refs))
		snaps, err := s.fs.GetAll(ctx, refs[lo:hi])
		if err != nil {
			return nil, fault.Wrap(fault.Transient, "", err, "reading image results of %s", id)
		}
		for i, sn := range snaps {
			if !sn.Exists() {
				continue
			}
			var r batch.ImageResult
			if err := sn.DataTo(&r); err != nil {
				return nil, fmt.Errorf("firestore.DataTo: %w", err)
			}
			out[keys[lo+i]] = r
		}
	}
	return out, nil
}

// ImageResult reads one image's result; found is false while it is pending.
func (s *Store) ImageResult(ctx context.Context, id string, ref batch.ImageRef) (batch.ImageResult, bool, error) {
	return getOptional[batch.ImageResult](ctx, s.req(id).Collection(colImages).Doc(ref.ID()), "image "+ref.ID()+" of "+id)
}

// FinishImage records an image's terminal result and counts it, atomically
// and once: it reports first=false, changing nothing, when the image was
// already recorded (a duplicate or concurrent delivery).
func (s *Store) FinishImage(ctx context.Context, id string, ref batch.ImageRef, shardIdx int, res batch.ImageResult) (first bool, err error) {
	imgRef := s.req(id).Collection(colImages).Doc(ref.ID())
	shRef := s.req(id).Collection(colShards).Doc(shardID(shardIdx))
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Create(imgRef, res); err != nil {
			return err
		}
		return tx.Update(shRef, countUpdates(res, 1))
	})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists:
		return false, nil
	default:
		return false, fault.Wrap(fault.Transient, "store_unavailable", err, "recording image %s of %s", ref.ID(), id)
	}
}

// FinishCopies records res for each image of refs that has no result yet
// and counts it in its shard, in transactions of up to 200 images (each
// fits Firestore's 500 writes with every shard it touches). An image that
// has a result is left as it is and not counted again.
func (s *Store) FinishCopies(ctx context.Context, id string, refs []batch.ShardedRef, res batch.ImageResult) (recorded int, err error) {
	const perTx = 200
	for lo := 0; lo < len(refs); lo += perTx {
		part := refs[lo:min(lo+perTx, len(refs))]
		docs := make([]*firestore.DocumentRef, len(part))
		for i, r := range part {
			docs[i] = s.req(id).Collection(colImages).Doc(r.ID())
		}
		n := 0
		err := s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
			n = 0
			snaps, err := tx.GetAll(docs)
			if err != nil {
				return err
			}
			perShard := map[int]int{}
			for i, sn := range snaps {
				if sn.Exists() {
					continue
				}
				if err := tx.Create(docs[i], res); err != nil {
					return err
				}
				perShard[part[i].Shard]++
				n++
			}
			for sh, k := range perShard {
				if err := tx.Update(s.req(id).Collection(colShards).Doc(shardID(sh)), countUpdates(res, k)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return recorded, fault.Wrap(fault.Transient, "store_unavailable", err, "recording %d images of %s", len(part), id)
		}
		recorded += n
	}
	return recorded, nil
}

// ShardFinished reports whether every image of one shard is terminal.
func (s *Store) ShardFinished(ctx context.Context, id string, shardIdx int) (bool, error) {
	snap, err := s.req(id).Collection(colShards).Doc(shardID(shardIdx)).Get(ctx)
	if err != nil {
		return false, fault.Wrap(fault.Transient, "store_unavailable", err, "reading shard %d of %s", shardIdx, id)
	}
	var sh shard
	if err := snap.DataTo(&sh); err != nil {
		return false, fmt.Errorf("firestore.DataTo: %w", err)
	}
	return sh.Processed+sh.Failed >= sh.Expected, nil
}

// Counts sums the shards; updated is the latest shard update.
func (s *Store) Counts(ctx context.Context, r batch.Request) (c batch.Counts, updated time.Time, err error) {
	c.Total = r.TotalImages
	refs := make([]*firestore.DocumentRef, r.Shards)
	for i := range refs {
		refs[i] = s.req(r.ID).Collection(colShards).Doc(shardID(i))
	}
	snaps, err := s.fs.GetAll(ctx, refs)
	if err != nil {
		return c, updated, fault.Wrap(fault.Transient, "store_unavailable", err, "reading counters of %s", r.ID)
	}
	for _, sn := range snaps {
		var sh shard
		if err := sn.DataTo(&sh); err != nil {
			return c, updated, fmt.Errorf("firestore.DataTo: %w", err)
		}
		c.Processed += sh.Processed
		c.Failed += sh.Failed
		c.InputBytes += sh.InputBytes
		c.OutputBytes += sh.OutputBytes
		if sh.UpdatedAt.After(updated) {
			updated = sh.UpdatedAt
		}
	}
	return c, updated, nil
}

// Complete records the request's completion once: won is true for the one
// call that created it. comp is the completion as stored; its HookFired
// tells whether the completion hook has been confirmed.
func (s *Store) Complete(ctx context.Context, r batch.Request, c batch.Counts) (won bool, comp batch.Completion, err error) {
	comp = batch.Completion{Status: batch.StatusOf(c), At: time.Now().UTC()}
	evRef := s.req(r.ID).Collection(colEvents).Doc(docComplete)
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Create(evRef, comp); err != nil {
			return err
		}
		return tx.Update(s.req(r.ID), []firestore.Update{
			{Path: "status", Value: comp.Status},
			{Path: "completedAt", Value: comp.At},
			{Path: "processedImages", Value: c.Processed},
			{Path: "failedImages", Value: c.Failed},
		})
	})
	switch status.Code(err) {
	case codes.OK:
		return true, comp, nil
	case codes.AlreadyExists:
		comp, found, err := s.GetCompletion(ctx, r.ID)
		if err == nil && !found {
			err = fault.New(fault.Transient, "store_unavailable", "completion of %s exists and does not", r.ID)
		}
		return false, comp, err
	default:
		return false, comp, fault.Wrap(fault.Transient, "store_unavailable", err, "recording completion of %s", r.ID)
	}
}

// HookFired marks the completion hook as done and counts the call.
func (s *Store) HookFired(ctx context.Context, id string) error {
	_, err := s.req(id).Collection(colEvents).Doc(docComplete).Update(ctx, []firestore.Update{
		{Path: "hookFired", Value: true},
		{Path: "hookCalls", Value: firestore.Increment(1)},
	})
	if err != nil {
		return fault.Wrap(fault.Transient, "store_unavailable", err, "marking the completion hook of %s", id)
	}
	return nil
}

// GetCompletion reads the completion record; found is false before it.
func (s *Store) GetCompletion(ctx context.Context, id string) (batch.Completion, bool, error) {
	return getOptional[batch.Completion](ctx, s.req(id).Collection(colEvents).Doc(docComplete), "completion of "+id)
}

// getOptional reads a document that may not exist yet: found is false then.
// Other failures are transient.
func getOptional[T any](ctx context.Context, ref *firestore.DocumentRef, what string) (v T, found bool, err error) {
	snap, err := ref.Get(ctx)
	if status.Code(err) == codes.NotFound {
		return v, false, nil
	}
	if err != nil {
		return v, false, fault.Wrap(fault.Transient, "store_unavailable", err, "reading %s", what)
	}
	if err := snap.DataTo(&v); err != nil {
		return v, false, fmt.Errorf("firestore.DataTo: %w", err)
	}
	return v, true, nil
}

// CountAttempt counts one failed delivery of an image and returns how many
// there have been. Pub/Sub's own count does not reach the function
// (functions-framework drops deliveryAttempt), and a dead-letter policy
// depends on IAM that can be missing: this count is ours.
func (s *Store) CountAttempt(ctx context.Context, id string, ref batch.ImageRef) (int, error) {
	doc := s.req(id).Collection(colAttempts).Doc(ref.ID())
	if _, err := doc.Set(ctx, map[string]any{"failures": firestore.Increment(1), "seenAt": firestore.ServerTimestamp}, firestore.MergeAll); err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "counting attempts of %s/%s", id, ref.ID())
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "counting attempts of %s/%s", id, ref.ID())
	}
	n, _ := snap.DataAt("failures")
	v, _ := n.(int64)
	return int(v), nil
}

// attemptsDoc is requests/{id}/attempts/{image}: what is known of an
// image's deliveries.
type attemptsDoc struct {
	Failures    int       `firestore:"failures"`
	SeenAt      time.Time `firestore:"seenAt"`
	Republished int       `firestore:"republished"`
	// HostWaitMs sums the waits image hosts asked for (Retry-After).
	HostWaitMs int64 `firestore:"hostWaitMs"`
}

// NoteHostWait adds d to the image's waits for its host, records that a
// delivery of it is alive, and returns the waits so far.
func (s *Store) NoteHostWait(ctx context.Context, id string, ref batch.ImageRef, d time.Duration) (time.Duration, error) {
	doc := s.req(id).Collection(colAttempts).Doc(ref.ID())
	if _, err := doc.Set(ctx, map[string]any{"hostWaitMs": firestore.Increment(d.Milliseconds()), "seenAt": firestore.ServerTimestamp}, firestore.MergeAll); err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "recording a wait for the host of %s/%s", id, ref.ID())
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "reading the waits for the host of %s/%s", id, ref.ID())
	}
	v, _ := snap.DataAt("hostWaitMs")
	ms, _ := v.(int64)
	return time.Duration(ms) * time.Millisecond, nil
}

// ImageStalls reads what is known of each image's deliveries, in the order
// of refs.
func (s *Store) ImageStalls(ctx context.Context, id string, refs []batch.ImageRef) ([]batch.ImageStall, error) {
	out := make([]batch.ImageStall, 0, len(refs))
	for lo := 0; lo < len(refs); lo += 500 {
		part := refs[lo:min(lo+500, len(refs))]
		docs := make([]*firestore.DocumentRef, len(part))
		for i, r := range part {
			docs[i] = s.req(id).Collection(colAttempts).Doc(r.ID())
		}
		snaps, err := s.fs.GetAll(ctx, docs)
		if err != nil {
			return nil, fault.Wrap(fault.Transient, "store_unavailable", err, "reading the deliveries of %s", id)
		}
		for _, sn := range snaps {
			var a attemptsDoc
			if sn.Exists() {
				if err := sn.DataTo(&a); err != nil {
					return nil, fmt.Errorf("firestore.DataTo: %w", err)
				}
			}
			out = append(out, batch.ImageStall{SeenAt: a.SeenAt, Republished: a.Republished})
		}
	}
	return out, nil
}

// NoteRepublished counts one republishing of each image and marks it seen
// at at.
func (s *Store) NoteRepublished(ctx context.Context, id string, refs []batch.ImageRef, at time.Time) error {
	bw := s.fs.BulkWriter(ctx)
	jobs := make([]*firestore.BulkWriterJob, 0, len(refs))
	for _, r := range refs {
		j, err := bw.Set(s.req(id).Collection(colAttempts).Doc(r.ID()),
			map[string]any{"republished": firestore.Increment(1), "seenAt": at.UTC()}, firestore.MergeAll)
		if err != nil {
			bw.End()
			return fmt.Errorf("firestore.BulkWriter.Set: %w", err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			return fault.Wrap(fault.Transient, "store_unavailable", err, "noting republished images of %s", id)
		}
	}
	return nil
}

// PendingRequests returns up to limit requests that have not finished.
func (s *Store) PendingRequests(ctx context.Context, limit int) ([]batch.Request, error) {
	docs, err := s.fs.Collection(colRequests).Where("status", "==", string(batch.Pending)).Limit(limit).Documents(ctx).GetAll()
	if err != nil {
		return nil, fault.Wrap(fault.Transient, "store_unavailable", err, "listing unfinished requests")
	}
	out := make([]batch.Request, 0, len(docs))
	for _, d := range docs {
		var r batch.Request
		if err := d.DataTo(&r); err != nil {
			return nil, fmt.Errorf("firestore.DataTo: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// InFlightImages sums the images of owner's unfinished requests.
func (s *Store) InFlightImages(ctx context.Context, owner string) (int, error) {
	docs, err := s.fs.Collection(colRequests).Where("owner", "==", owner).Where("status", "==", string(batch.Pending)).
		Select("totalImages").Documents(ctx).GetAll()
	if err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "counting images in flight")
	}
	n := 0
	for _, d := range docs {
		v, _ := d.DataAt("totalImages")
		c, _ := v.(int64)
		n += int(c)
	}
	return n, nil
}
