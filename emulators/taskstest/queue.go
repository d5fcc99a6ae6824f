package taskstest

import (
	"container/heap"
	"context"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"
)

// queue is one queue's state. Every field is guarded by Server.mu except
// wake, which is a buffered channel.
type queue struct {
	pb         *cloudtaskspb.Queue
	tasks      map[string]*task
	ready      taskHeap // tasks waiting for their schedule time, not in flight
	tombstones map[string]time.Time
	seq        uint64
	inflight   int32
	limiter    *rate.Limiter
	wake       chan struct{}
	cancel     context.CancelFunc
}

type task struct {
	pb           *cloudtaskspb.Task
	seq          uint64
	index        int // position in queue.ready, -1 when not there
	dispatching  bool
	firstAttempt time.Time
	prevResponse int // HTTP status of the previous attempt, 0 if none
	execCount    int32
}

// less orders tasks by schedule time, then by creation.
func (t *task) less(o *task) bool {
	a, b := t.pb.GetScheduleTime().AsTime(), o.pb.GetScheduleTime().AsTime()
	if !a.Equal(b) {
		return a.Before(b)
	}
	return t.seq < o.seq
}

// view returns a copy of the task as the API shows it: BASIC omits the body.
func (t *task) view(v cloudtaskspb.Task_View) *cloudtaskspb.Task {
	out := proto.Clone(t.pb).(*cloudtaskspb.Task)
	if v != cloudtaskspb.Task_FULL {
		v = cloudtaskspb.Task_BASIC
		if hr := out.GetHttpRequest(); hr != nil {
			hr.Body = nil
		}
	}
	out.View = v
	return out
}

type taskHeap []*task

func (h taskHeap) Len() int           { return len(h) }
func (h taskHeap) Less(i, j int) bool { return h[i].less(h[j]) }
func (h taskHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *taskHeap) Push(x any) {
	t := x.(*task)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *taskHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	t.index = -1
	*h = old[:len(old)-1]
	return t
}

func (s *Server) startQueueLocked(pb *cloudtaskspb.Queue) {
	ctx, cancel := context.WithCancel(s.ctx)
	q := &queue{
		pb:         pb,
		tasks:      map[string]*task{},
		tombstones: map[string]time.Time{},
		wake:       make(chan struct{}, 1),
		cancel:     cancel,
	}
	q.configure()
	s.queues[pb.Name] = q
	s.wg.Add(1)
	go s.runQueue(ctx, q)
}

// configure applies the queue's rate limits to its limiter.
func (q *queue) configure() {
	r := rate.Limit(q.pb.GetRateLimits().GetMaxDispatchesPerSecond())
	b := int(q.pb.GetRateLimits().GetMaxBurstSize())
	if q.limiter == nil {
		q.limiter = rate.NewLimiter(r, b)
		return
	}
	q.limiter.SetLimit(r)
	q.limiter.SetBurst(b)
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) stop() {
	q.cancel()
	q.signal()
}

func (q *queue) pushLocked(t *task) {
	heap.Push(&q.ready, t)
}

// removeLocked deletes a task and reserves its name.
func (q *queue) removeLocked(name string, now time.Time, ttl time.Duration) {
	t, ok := q.tasks[name]
	if !ok {
		return
	}
	if t.index >= 0 {
		heap.Remove(&q.ready, t.index)
	}
	delete(q.tasks, name)
	q.tombstones[name] = now.Add(ttl)
	// Sweep expired tombstones now and then.
	if len(q.tombstones)%1024 == 0 {
		for n, until := range q.tombstones {
			if !now.Before(until) {
				delete(q.tombstones, n)
			}
		}
	}
}

// beginLocked takes a task out of the ready heap and records a new attempt.
func (q *queue) beginLocked(t *task, now time.Time) {
	if t.index >= 0 {
		heap.Remove(&q.ready, t.index)
	}
	t.dispatching = true
	q.inflight++
	att := &cloudtaskspb.Attempt{
		ScheduleTime: t.pb.ScheduleTime,
		DispatchTime: timestampOf(now),
	}
	if t.pb.DispatchCount == 0 {
		t.firstAttempt = now
		t.pb.FirstAttempt = att
	}
	t.pb.LastAttempt = att
	t.pb.DispatchCount++
}

// runQueue is the queue's dispatcher: it starts the earliest due task
// whenever the queue is running, below its concurrency limit and the rate
// limiter grants a token.
func (s *Server) runQueue(ctx context.Context, q *queue) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := func(d time.Duration) bool {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-q.wake:
			return true
		case <-timer.C:
			return true
		}
	}
	for {
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		now := s.opts.now()
		idle := time.Hour
		var next *task
		switch {
		case q.pb.State != cloudtaskspb.Queue_RUNNING:
		case q.inflight >= q.pb.GetRateLimits().GetMaxConcurrentDispatches():
		case q.ready.Len() == 0:
		default:
			head := q.ready[0]
			if at := head.pb.GetScheduleTime().AsTime(); at.After(now) {
				idle = at.Sub(now)
			} else {
				next = head
			}
		}
		s.mu.Unlock()
		if next == nil {
			if !wait(idle) {
				return
			}
			continue
		}
		// A token first; then take whatever task is due at that moment.
		res := q.limiter.Reserve()
		if d := res.Delay(); d > 0 {
			if !wait(d) {
				res.Cancel()
				return
			}
			if res.Delay() > 0 {
				// Woken early (new task, config change): try again.
				res.Cancel()
				continue
			}
		}
		s.mu.Lock()
		now = s.opts.now()
		if q.pb.State == cloudtaskspb.Queue_RUNNING && q.inflight < q.pb.GetRateLimits().GetMaxConcurrentDispatches() &&
			q.ready.Len() > 0 && !q.ready[0].pb.GetScheduleTime().AsTime().After(now) {
			t := q.ready[0]
			q.beginLocked(t, now)
			s.wg.Add(1)
			go s.dispatch(q, t)
		} else {
			res.Cancel()
		}
		s.mu.Unlock()
	}
}
