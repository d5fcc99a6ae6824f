package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// Staging stores a request's products while its upload is still being
// read, a chunk at a time, so the upload's size does not decide how much
// memory it takes. The request document is written last (Commit): until
// then the chunks belong to no request, and Discard deletes them.
type Staging struct {
	s    *Store
	ctx  context.Context
	ref  *firestore.DocumentRef
	cur  chunk
	size int
	// starts lists the chunks handed to Firestore; each write runs on its
	// own, at most stagedChunksInFlight at once.
	starts []int
	slots  chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	err    error
	// urls holds each product's URL count: enough to name every image of
	// the request without reading its products back.
	urls   []int32
	images int
}

// stagedChunksInFlight bounds the chunk writes under way while an upload is
// read: a chunk's write is several times its products' size in memory.
const stagedChunksInFlight = 4

// Stage starts storing the products of request id.
func (s *Store) Stage(ctx context.Context, id string) batch.Staging {
	return &Staging{s: s, ctx: ctx, ref: s.req(id), slots: make(chan struct{}, stagedChunksInFlight)}
}

// ID is the staged request's ID.
func (st *Staging) ID() string { return st.ref.ID }

// Images counts the images of the products added.
func (st *Staging) Images() int { return st.images }

// URLCounts returns each product's URL count, in input order.
func (st *Staging) URLCounts() []int32 { return st.urls }

// Add appends a product; a full chunk is handed to Firestore. It fails when
// an earlier chunk's write did.
func (st *Staging) Add(p batch.Product) error {
	ps := len(p.SerialNumber) + len(p.ProductName) + 64
	for _, u := range p.InputURLs {
		ps += len(u) + 8
	}
	if len(st.cur.Products) >= chunkMaxProducts || (len(st.cur.Products) > 0 && st.size+ps > chunkMaxBytes) {
		if err := st.flush(); err != nil {
			return err
		}
	}
	if len(st.cur.Products) == 0 {
		st.cur.Start = len(st.urls)
		st.size = 0
	}
	st.cur.Products = append(st.cur.Products, p)
	st.size += ps
	st.urls = append(st.urls, int32(len(p.InputURLs)))
	st.images += len(p.InputURLs)
	return nil
}

// flush writes the current chunk in the background, waiting for a slot.
func (st *Staging) flush() error {
	if len(st.cur.Products) == 0 {
		return st.firstErr()
	}
	c := st.cur
	expire := time.Now().Add(StagedChunkTTL).UTC()
	c.ExpireAt = &expire
	st.cur = chunk{Products: make([]batch.Product, 0, len(c.Products))}
	st.starts = append(st.starts, c.Start)
	st.slots <- struct{}{}
	st.wg.Add(1)
	go func() {
		defer func() { <-st.slots; st.wg.Done() }()
		if _, err := st.ref.Collection(colChunks).Doc(chunkID(c.Start)).Set(st.ctx, c); err != nil {
			st.mu.Lock()
			if st.err == nil {
				st.err = fault.Wrap(fault.Transient, "", err, "storing the request's products")
			}
			st.mu.Unlock()
		}
	}()
	return st.firstErr()
}

// Wait blocks until every chunk handed to Firestore so far is written, and
// returns the first write's error.
func (st *Staging) Wait() error {
	st.wg.Wait()
	return st.firstErr()
}

func (st *Staging) firstErr() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

// Commit stores the last chunk and the counter shards, waits for every
// write, then creates the request document from r (ID, counts, chunk index
// and status filled in).
func (st *Staging) Commit(ctx context.Context, r batch.Request) (batch.Request, error) {
	r.ID = st.ID()
	r.ProductCount = len(st.urls)
	r.TotalImages = st.images
	r.Shards = batch.ShardCount(r.TotalImages)
	r.Status = batch.Pending
	_ = st.flush() // its error, if any, is firstErr's
	st.wg.Wait()
	if err := st.firstErr(); err != nil {
		return r, err
	}
	r.ChunkStarts = st.starts
	expected := make([]int, r.Shards)
	for i := range r.TotalImages {
		expected[batch.ImageShard(i, r.Shards)]++
	}
	now := time.Now().UTC()
	bw := st.s.fs.BulkWriter(ctx)
	jobs := make([]*firestore.BulkWriterJob, 0, r.Shards+len(st.starts))
	// The chunks belong to a request from now on: no longer expiring. A
	// crash between this and the request's creation leaves chunks that
	// never expire; the other order could delete a live request's products.
	for _, start := range st.starts {
		j, err := bw.Update(st.ref.Collection(colChunks).Doc(chunkID(start)), []firestore.Update{{Path: "expireAt", Value: firestore.Delete}})
		if err != nil {
			bw.End()
			return r, fmt.Errorf("firestore.BulkWriter.Update: %w", err)
		}
		jobs = append(jobs, j)
	}
	for i, e := range expected {
		j, err := bw.Set(st.ref.Collection(colShards).Doc(shardID(i)), shard{Expected: e, UpdatedAt: now})
		if err != nil {
			bw.End()
			return r, fmt.Errorf("firestore.BulkWriter.Set: %w", err)
		}
		jobs = append(jobs, j)
	}
	bw.End()
	for _, j := range jobs {
		if _, err := j.Results(); err != nil {
			return r, fault.Wrap(fault.Transient, "", err, "storing the request's counters")
		}
	}
	r.CreatedAt = now
	if _, err := st.ref.Create(ctx, r); err != nil {
		return r, fault.Wrap(fault.Transient, "", err, "storing the request")
	}
	return r, nil
}

// Discard deletes what was staged, for an upload that is refused after its
// products began to be stored. Best effort: the chunks belong to no
// request either way.
func (st *Staging) Discard(ctx context.Context) {
	st.wg.Wait()
	if len(st.starts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	bw := st.s.fs.BulkWriter(ctx)
	for _, start := range st.starts {
		if _, err := bw.Delete(st.ref.Collection(colChunks).Doc(chunkID(start))); err != nil {
			break
		}
	}
	bw.End()
}
