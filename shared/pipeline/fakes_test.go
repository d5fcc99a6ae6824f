package pipeline_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// memStore keeps requests, results, counters, completions and webhook state
// in memory, with the guarantees the Firestore adapter gives: a result is
// created once and counted in the same step, a completion is created once.
// The hook fields, when set, run before the method of their name and may
// fail it (a crash or an outage at that point).
type memStore struct {
	mu          sync.Mutex
	requests    map[string]batch.Request
	products    map[string][]batch.Product
	results     map[string]map[batch.ImageRef]batch.ImageResult
	shardDone   map[string][]int // terminal images per shard
	shardWant   map[string][]int // images per shard
	attempts    map[string]map[batch.ImageRef]int
	completions map[string]batch.Completion
	webhooks    map[string]batch.WebhookState
	attemptLog  map[string]bool
	updated     map[string]time.Time // a request's last counted result
	stalls      map[string]map[batch.ImageRef]batch.ImageStall
	hostWaits   map[string]time.Duration // by request/image

	// now is the store's clock (server timestamps).
	now func() time.Time

	BeforeShardFinished func(id string, shard int) error
	BeforeFinishImage   func(id string, ref batch.ImageRef) error
}

var (
	_ pipeline.Requests    = (*memStore)(nil)
	_ pipeline.Results     = (*memStore)(nil)
	_ pipeline.Completions = (*memStore)(nil)
	_ pipeline.WebhookLog  = (*memStore)(nil)
	_ pipeline.Sweeps      = (*memStore)(nil)
	_ batch.Staging        = (*memStaging)(nil)
)

func newMemStore() *memStore {
	return &memStore{
		requests: map[string]batch.Request{}, products: map[string][]batch.Product{},
		results: map[string]map[batch.ImageRef]batch.ImageResult{}, shardDone: map[string][]int{}, shardWant: map[string][]int{},
		attempts: map[string]map[batch.ImageRef]int{}, completions: map[string]batch.Completion{},
		webhooks: map[string]batch.WebhookState{}, attemptLog: map[string]bool{},
		updated: map[string]time.Time{}, stalls: map[string]map[batch.ImageRef]batch.ImageStall{}, hostWaits: map[string]time.Duration{},
		now: time.Now,
	}
}

func notFound(id string) error { return fault.New(fault.NotFound, "", "request %s not found", id) }

// memStaging is an upload in memory.
type memStaging struct {
	s        *memStore
	id       string
	products []batch.Product
	urls     []int32
	images   int
}

func (m *memStore) Stage(_ context.Context, id string) batch.Staging {
	return &memStaging{s: m, id: id}
}

func (st *memStaging) ID() string         { return st.id }
func (st *memStaging) Images() int        { return st.images }
func (st *memStaging) URLCounts() []int32 { return st.urls }
func (st *memStaging) Discard(context.Context) {
	st.products, st.urls, st.images = nil, nil, 0
}

func (st *memStaging) Add(p batch.Product) error {
	st.products = append(st.products, p)
	st.urls = append(st.urls, int32(len(p.InputURLs)))
	st.images += len(p.InputURLs)
	return nil
}

func (st *memStaging) Commit(_ context.Context, r batch.Request) (batch.Request, error) {
	m := st.s
	m.mu.Lock()
	defer m.mu.Unlock()
	r.ID, r.ProductCount, r.TotalImages = st.id, len(st.products), st.images
	r.Shards, r.Status, r.CreatedAt = batch.ShardCount(r.TotalImages), batch.Pending, m.now().UTC()
	for start := 0; start < len(st.products); start += 2 { // chunks of two products
		r.ChunkStarts = append(r.ChunkStarts, start)
	}
	want := make([]int, r.Shards)
	for i := range r.TotalImages {
		want[batch.ImageShard(i, r.Shards)]++
	}
	m.requests[r.ID], m.products[r.ID] = r, st.products
	m.shardWant[r.ID], m.shardDone[r.ID] = want, make([]int, r.Shards)
	m.results[r.ID], m.attempts[r.ID] = map[batch.ImageRef]batch.ImageResult{}, map[batch.ImageRef]int{}
	m.stalls[r.ID] = map[batch.ImageRef]batch.ImageStall{}
	return r, nil
}

func (m *memStore) GetRequest(_ context.Context, id string) (batch.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.requests[id]
	if !ok {
		return r, notFound(id)
	}
	return r, nil
}

func (m *memStore) Products(_ context.Context, r batch.Request, from, to int) ([]batch.Product, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ps := m.products[r.ID]
	to = min(to, len(ps))
	if from > to {
		return nil, nil
	}
	return append([]batch.Product(nil), ps[from:to]...), nil
}

func (m *memStore) FinishImage(_ context.Context, id string, ref batch.ImageRef, shard int, res batch.ImageResult) (bool, error) {
	if m.BeforeFinishImage != nil {
		if err := m.BeforeFinishImage(id, ref); err != nil {
			return false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[id]; !ok {
		return false, notFound(id)
	}
	if _, done := m.results[id][ref]; done {
		return false, nil
	}
	m.results[id][ref] = res
	m.shardDone[id][shard]++
	m.updated[id] = m.now()
	return true, nil
}

func (m *memStore) FinishCopies(_ context.Context, id string, refs []batch.ShardedRef, res batch.ImageResult) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.requests[id]; !ok {
		return 0, notFound(id)
	}
	n := 0
	for _, r := range refs {
		if _, done := m.results[id][r.ImageRef]; done {
			continue
		}
		m.results[id][r.ImageRef] = res
		m.shardDone[id][r.Shard]++
		n++
	}
	if n > 0 {
		m.updated[id] = m.now()
	}
	return n, nil
}

func (m *memStore) PendingRequests(_ context.Context, limit int) ([]batch.Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []batch.Request
	for _, r := range m.requests {
		if r.Status == batch.Pending && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memStore) ImageStalls(_ context.Context, id string, refs []batch.ImageRef) ([]batch.ImageStall, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]batch.ImageStall, len(refs))
	for i, r := range refs {
		out[i] = m.stalls[id][r]
	}
	return out, nil
}

func (m *memStore) NoteRepublished(_ context.Context, id string, refs []batch.ImageRef, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range refs {
		st := m.stalls[id][r]
		st.Republished++
		st.SeenAt = at
		m.stalls[id][r] = st
	}
	return nil
}

func (m *memStore) NoteHostWait(_ context.Context, id string, ref batch.ImageRef, d time.Duration) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.stalls[id][ref]
	st.SeenAt = m.now()
	m.stalls[id][ref] = st
	m.hostWaits[id+"/"+ref.ID()] += d
	return m.hostWaits[id+"/"+ref.ID()], nil
}

func (m *memStore) ImageResult(_ context.Context, id string, ref batch.ImageRef) (batch.ImageResult, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[id][ref]
	return r, ok, nil
}

func (m *memStore) Results(_ context.Context, id string, first int, products []batch.Product) (map[batch.ImageRef]batch.ImageResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[batch.ImageRef]batch.ImageResult{}
	for i, p := range products {
		for u := range p.InputURLs {
			ref := batch.ImageRef{Product: first + i, URL: u}
			if r, ok := m.results[id][ref]; ok {
				out[ref] = r
			}
		}
	}
	return out, nil
}

func (m *memStore) CountAttempt(_ context.Context, id string, ref batch.ImageRef) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts[id][ref]++
	st := m.stalls[id][ref]
	st.SeenAt = m.now()
	m.stalls[id][ref] = st
	return m.attempts[id][ref], nil
}

func (m *memStore) ShardFinished(_ context.Context, id string, shard int) (bool, error) {
	if m.BeforeShardFinished != nil {
		if err := m.BeforeShardFinished(id, shard); err != nil {
			return false, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.shardDone[id][shard] >= m.shardWant[id][shard], nil
}

func (m *memStore) Counts(_ context.Context, r batch.Request) (batch.Counts, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := batch.Counts{Total: r.TotalImages}
	for _, res := range m.results[r.ID] {
		if res.State == batch.ImageDone {
			c.Processed++
			c.InputBytes += res.InputBytes
			c.OutputBytes += res.OutBytes
		} else {
			c.Failed++
		}
	}
	return c, m.updated[r.ID], nil
}

func (m *memStore) Complete(_ context.Context, r batch.Request, c batch.Counts) (bool, batch.Completion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if comp, ok := m.completions[r.ID]; ok {
		comp.HookCalls++
		m.completions[r.ID] = comp
		return false, comp, nil
	}
	comp := batch.Completion{Status: batch.StatusOf(c), At: time.Now(), HookCalls: 1}
	m.completions[r.ID] = comp
	req := m.requests[r.ID]
	req.Status, req.Processed, req.Failed, req.CompletedAt = comp.Status, c.Processed, c.Failed, comp.At
	m.requests[r.ID] = req
	return true, comp, nil
}

func (m *memStore) HookFired(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	comp := m.completions[id]
	comp.HookFired = true
	m.completions[id] = comp
	return nil
}

// completion returns the request's completion record, if any.
func (m *memStore) completion(id string) (batch.Completion, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.completions[id]
	return c, ok
}

// backdateCompletion moves the completion's time back by d.
func (m *memStore) backdateCompletion(id string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.completions[id]
	c.At = c.At.Add(-d)
	m.completions[id] = c
}

func (m *memStore) result(id string, ref batch.ImageRef) (batch.ImageResult, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[id][ref]
	return r, ok
}

func (m *memStore) StartWebhook(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.webhooks[id]; !ok {
		m.webhooks[id] = batch.WebhookState{Status: batch.WebhookDelivering}
	}
	return nil
}

func (m *memStore) GetWebhookState(_ context.Context, id string) (batch.WebhookState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.webhooks[id]
	return w, ok, nil
}

func (m *memStore) RecordWebhookAttempt(_ context.Context, id, key string, a batch.WebhookAttempt) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attemptLog[id+"/"+key] {
		return false, nil
	}
	m.attemptLog[id+"/"+key] = true
	w := m.webhooks[id]
	w.Attempts++
	w.Status, w.LastAttemptAt, w.LastStatusCode, w.LastError = a.Outcome, a.At, a.StatusCode, a.Error
	m.webhooks[id] = w
	return true, nil
}

func (m *memStore) NextRedelivery(_ context.Context, id string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.webhooks[id]
	w.Redeliveries++
	m.webhooks[id] = w
	return w.Redeliveries, nil
}

// Function-field mocks of the pipeline's other dependencies.

type publisher struct {
	PublishAllFn func(ctx context.Context, msgs []queue.ImageMessage) ([]int, error)
}

func (p *publisher) PublishAll(ctx context.Context, msgs []queue.ImageMessage) ([]int, error) {
	return p.PublishAllFn(ctx, msgs)
}

type bucket struct {
	PutFn func(ctx context.Context, name string, data []byte) error
	// URLFn makes links; nil makes https://storage.example/NAME.
	URLFn func(name string) (string, error)
}

func (b *bucket) Put(ctx context.Context, name string, data []byte) error {
	return b.PutFn(ctx, name, data)
}

func (b *bucket) URL(name string) (string, error) {
	if b.URLFn != nil {
		return b.URLFn(name)
	}
	return "https://storage.example/" + name, nil
}

// memThumbs keeps what is put in it, in memory, as the private bucket
// does; Fail, when set, may fail a Put (an outage).
type memThumbs struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    int
	Fail    func(name string) error
}

func newMemThumbs() *memThumbs { return &memThumbs{objects: map[string][]byte{}} }

func (m *memThumbs) Put(_ context.Context, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.Fail != nil {
		if err := m.Fail(name); err != nil {
			return err
		}
	}
	m.objects[name] = append([]byte(nil), data...)
	return nil
}

// get returns the object stored under name.
func (m *memThumbs) get(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[name]
	return b, ok
}

type fetcher struct {
	FetchFn func(ctx context.Context, url string, maxBytes int64) ([]byte, error)
}

func (f *fetcher) Fetch(ctx context.Context, url string, maxBytes int64) ([]byte, error) {
	return f.FetchFn(ctx, url, maxBytes)
}

type hook struct {
	RequestFinishedFn func(ctx context.Context, r batch.Request, c batch.Counts) error
}

func (h *hook) RequestFinished(ctx context.Context, r batch.Request, c batch.Counts) error {
	return h.RequestFinishedFn(ctx, r, c)
}

var (
	_ pipeline.Publisher      = (*publisher)(nil)
	_ pipeline.Bucket         = (*bucket)(nil)
	_ pipeline.ThumbStore     = (*memThumbs)(nil)
	_ pipeline.Fetcher        = (*fetcher)(nil)
	_ pipeline.CompletionHook = (*hook)(nil)
)

// products returns n products of urls images each.
func products(n, urls int) []batch.Product {
	out := make([]batch.Product, n)
	for i := range out {
		out[i] = batch.Product{SerialNumber: fmt.Sprint("S", i), ProductName: fmt.Sprint("Product ", i)}
		for u := range urls {
			out[i].InputURLs = append(out[i].InputURLs, fmt.Sprintf("https://img.example/%d/%d.jpg", i, u))
		}
	}
	return out
}
