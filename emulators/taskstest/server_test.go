package taskstest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudtasks "cloud.google.com/go/cloudtasks/apiv2"
	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/imgpipe/imgpipe/emulators/taskstest"
)

const location = "projects/test-project/locations/us-central1"

// newClient starts an emulator and returns the official client dialled to it
// the way any user of the standalone binary would.
func newClient(t *testing.T, opts ...taskstest.Option) *cloudtasks.Client {
	t.Helper()
	c, _ := newServer(t, opts...)
	return c
}

// newServer is newClient that also returns the server, to wait on.
func newServer(t *testing.T, opts ...taskstest.Option) (*cloudtasks.Client, *taskstest.Server) {
	t.Helper()
	srv, err := taskstest.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := cloudtasks.NewClient(context.Background(),
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, srv
}

// waitIdle waits until srv has no task left and no dispatch in flight.
func waitIdle(t *testing.T, srv *taskstest.Server, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatalf("the emulator still has work after %v: %v", within, err)
	}
}

// delivery is one request as a receiver saw it.
type delivery struct {
	at     time.Time
	header http.Header
	method string
	body   string
}

// receiver is a real HTTP target that answers each delivery with respond(n),
// n counting from 1.
type receiver struct {
	*httptest.Server
	mu        sync.Mutex
	got       []delivery
	arrived   chan struct{}
	inflight  atomic.Int32
	maxFlight atomic.Int32
	respond   func(n int, w http.ResponseWriter)
	holdFor   time.Duration
}

func newReceiver(t *testing.T, respond func(n int, w http.ResponseWriter)) *receiver {
	rc := &receiver{respond: respond, arrived: make(chan struct{}, 1000)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cur := rc.inflight.Add(1)
		defer rc.inflight.Add(-1)
		for {
			m := rc.maxFlight.Load()
			if cur <= m || rc.maxFlight.CompareAndSwap(m, cur) {
				break
			}
		}
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{at: time.Now(), header: r.Header.Clone(), method: r.Method, body: string(body)})
		n := len(rc.got)
		rc.mu.Unlock()
		rc.arrived <- struct{}{}
		if rc.holdFor > 0 {
			select {
			case <-time.After(rc.holdFor):
			case <-r.Context().Done():
			}
		}
		rc.respond(n, w)
	}))
	t.Cleanup(rc.Server.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// await waits for n deliveries in total.
func (rc *receiver) await(t *testing.T, n int, within time.Duration) []delivery {
	t.Helper()
	deadline := time.After(within)
	for len(rc.deliveries()) < n {
		select {
		case <-rc.arrived:
		case <-deadline:
			t.Fatalf("got %d deliveries within %v, want %d", len(rc.deliveries()), within, n)
		}
	}
	return rc.deliveries()
}

func status200(int, http.ResponseWriter)     {}
func status500(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) }
func failFirst(k int) func(int, http.ResponseWriter) {
	return func(n int, w http.ResponseWriter) {
		if n <= k {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}
}

func createQueue(t *testing.T, c *cloudtasks.Client, id string, q *cloudtaskspb.Queue) *cloudtaskspb.Queue {
	t.Helper()
	if q == nil {
		q = &cloudtaskspb.Queue{}
	}
	q.Name = location + "/queues/" + id
	got, err := c.CreateQueue(context.Background(), &cloudtaskspb.CreateQueueRequest{Parent: location, Queue: q})
	if err != nil {
		t.Fatalf("CreateQueue: %v", err)
	}
	return got
}

func httpTask(name, url string) *cloudtaskspb.Task {
	return &cloudtaskspb.Task{
		Name: name,
		MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
			Url: url, HttpMethod: cloudtaskspb.HttpMethod_POST,
			Headers: map[string]string{"Content-Type": "application/json"},
			Body:    []byte(`{"hello":"world"}`),
		}},
	}
}

func retryConfig(attempts int32, minB, maxB time.Duration, doublings int32) *cloudtaskspb.RetryConfig {
	return &cloudtaskspb.RetryConfig{MaxAttempts: attempts, MinBackoff: durationpb.New(minB), MaxBackoff: durationpb.New(maxB), MaxDoublings: doublings}
}

func gaps(ds []delivery) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ds); i++ {
		out = append(out, ds[i].at.Sub(ds[i-1].at))
	}
	return out
}

func checkGaps(t *testing.T, got []time.Duration, want []time.Duration, tol time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("gaps = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] < want[i]-tol/4 || got[i] > want[i]+tol {
			t.Errorf("gap %d = %v, want %v (tolerance -%v/+%v); all gaps %v", i+1, got[i], want[i], tol/4, tol, got)
		}
	}
}

func TestRetriesWithBackoffThenStopsAtMaxAttempts(t *testing.T) {
	t.Parallel()
	c, srv := newServer(t)
	rc := newReceiver(t, status500)
	q := createQueue(t, c, "retry", &cloudtaskspb.Queue{RetryConfig: retryConfig(5, time.Second, 8*time.Second, 3)})
	name := q.Name + "/tasks/always-fails"
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)}); err != nil {
		t.Fatal(err)
	}
	ds := rc.await(t, 5, 25*time.Second)
	checkGaps(t, gaps(ds), []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}, 400*time.Millisecond)
	for i, d := range ds {
		if got := d.header.Get("X-CloudTasks-TaskRetryCount"); got != strconv.Itoa(i) {
			t.Errorf("delivery %d: X-CloudTasks-TaskRetryCount = %q, want %d", i+1, got, i)
		}
	}
	t.Logf("attempt gaps for min 1s / max 8s / doublings 3 / 5 attempts: %v", gaps(ds))

	// No sixth attempt, and the task is gone.
	waitIdle(t, srv, 10*time.Second)
	if n := len(rc.deliveries()); n != 5 {
		t.Errorf("got %d deliveries, want exactly 5 (max_attempts)", n)
	}
	_, err := c.GetTask(context.Background(), &cloudtaskspb.GetTaskRequest{Name: name})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetTask after last attempt: err = %v, want NotFound", err)
	}
	// Its name stays reserved.
	_, err = c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateTask with the name of a failed task: err = %v, want AlreadyExists", err)
	}
}

func TestDeliversAfterFailuresAndRecordsAttempts(t *testing.T) {
	t.Parallel()
	c, srv := newServer(t)
	rc := newReceiver(t, failFirst(2))
	q := createQueue(t, c, "recover", &cloudtaskspb.Queue{RetryConfig: retryConfig(5, 200*time.Millisecond, time.Second, 16)})
	name := q.Name + "/tasks/fails-twice"
	created, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if created.GetHttpRequest().GetBody() != nil || created.View != cloudtaskspb.Task_BASIC {
		t.Errorf("CreateTask default view: body %q view %v, want no body in BASIC", created.GetHttpRequest().GetBody(), created.View)
	}

	// After the first failure the task shows its attempt.
	rc.await(t, 1, 5*time.Second)
	var got *cloudtaskspb.Task
	for i := 0; i < 50; i++ {
		got, err = c.GetTask(context.Background(), &cloudtaskspb.GetTaskRequest{Name: name, ResponseView: cloudtaskspb.Task_FULL})
		if err == nil && got.GetLastAttempt().GetResponseStatus() != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GetTask: %v", err)
	}
	if got.DispatchCount < 1 || got.ResponseCount < 1 || codes.Code(got.GetLastAttempt().GetResponseStatus().GetCode()) != codes.Internal {
		t.Errorf("after one 500: dispatch_count %d response_count %d last status %v", got.DispatchCount, got.ResponseCount, got.GetLastAttempt().GetResponseStatus())
	}
	if string(got.GetHttpRequest().GetBody()) != `{"hello":"world"}` {
		t.Errorf("FULL view body = %q", got.GetHttpRequest().GetBody())
	}

	ds := rc.await(t, 3, 5*time.Second)
	checkGaps(t, gaps(ds), []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, 300*time.Millisecond)
	for i, d := range ds {
		if d.method != http.MethodPost || d.body != `{"hello":"world"}` || d.header.Get("Content-Type") != "application/json" {
			t.Errorf("delivery %d: %s %q content-type %q", i+1, d.method, d.body, d.header.Get("Content-Type"))
		}
		if d.header.Get("X-CloudTasks-TaskRetryCount") != strconv.Itoa(i) {
			t.Errorf("delivery %d: retry count %q", i+1, d.header.Get("X-CloudTasks-TaskRetryCount"))
		}
		if i > 0 && d.header.Get("X-CloudTasks-TaskPreviousResponse") != "500" {
			t.Errorf("delivery %d: previous response %q, want 500", i+1, d.header.Get("X-CloudTasks-TaskPreviousResponse"))
		}
		for h, v := range map[string]string{
			"X-CloudTasks-QueueName": "recover",
			"X-CloudTasks-TaskName":  "fails-twice",
			"User-Agent":             "Google-Cloud-Tasks",
		} {
			if d.header.Get(h) != v {
				t.Errorf("delivery %d: %s = %q, want %q", i+1, h, d.header.Get(h), v)
			}
		}
		eta, err := strconv.ParseFloat(d.header.Get("X-CloudTasks-TaskETA"), 64)
		if err != nil || eta > float64(d.at.UnixNano())/1e9+0.01 {
			t.Errorf("delivery %d: X-CloudTasks-TaskETA %q is not a time before arrival", i+1, d.header.Get("X-CloudTasks-TaskETA"))
		}
	}
	// Done: the task is deleted and its name reserved.
	waitIdle(t, srv, 5*time.Second)
	if _, err := c.GetTask(context.Background(), &cloudtaskspb.GetTaskRequest{Name: name}); status.Code(err) != codes.NotFound {
		t.Errorf("GetTask after success: %v, want NotFound", err)
	}
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateTask with the name of an executed task: %v, want AlreadyExists", err)
	}
}

func TestDuplicateTaskNameIsAlreadyExists(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // how far the emulator's clock runs ahead
	c := newClient(t, taskstest.WithTombstoneTTL(time.Hour),
		taskstest.WithClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
	rc := newReceiver(t, status200)
	q := createQueue(t, c, "dedupe", nil)
	name := q.Name + "/tasks/request-abc123"
	later := httpTask(name, rc.URL)
	later.ScheduleTime = timestamppb.New(time.Now().Add(time.Hour))
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: later}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)})
	if status.Code(err) != codes.AlreadyExists {
		t.Fatalf("second CreateTask: err = %v, want AlreadyExists", err)
	}
	if err := c.DeleteTask(context.Background(), &cloudtaskspb.DeleteTaskRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateTask right after DeleteTask: err = %v, want AlreadyExists", err)
	}
	skew.Store(int64(time.Hour + time.Minute)) // past the name's reservation
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(name, rc.URL)}); err != nil {
		t.Errorf("CreateTask after the name's reservation ended: %v", err)
	}
	rc.await(t, 1, 5*time.Second)

	// Unnamed tasks get distinct generated names.
	a, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Name == b.Name {
		t.Errorf("two unnamed tasks got the same name %s", a.Name)
	}
}

func TestHonoursScheduleTime(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	rc := newReceiver(t, status200)
	q := createQueue(t, c, "scheduled", nil)
	at := time.Now().Add(1500 * time.Millisecond)
	tk := httpTask("", rc.URL)
	tk.ScheduleTime = timestamppb.New(at)
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: tk}); err != nil {
		t.Fatal(err)
	}
	now := httpTask("", rc.URL)
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: now}); err != nil {
		t.Fatal(err)
	}
	ds := rc.await(t, 2, 5*time.Second)
	if ds[0].at.After(at) {
		t.Errorf("the unscheduled task arrived at %v, after the scheduled one's time", ds[0].at)
	}
	if ds[1].at.Before(at) || ds[1].at.After(at.Add(300*time.Millisecond)) {
		t.Errorf("scheduled task arrived %v from its schedule_time, want within [0, 300ms]", ds[1].at.Sub(at))
	}
}

func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("max_dispatches_per_second", func(t *testing.T) {
		t.Parallel()
		c := newClient(t)
		rc := newReceiver(t, status200)
		q := createQueue(t, c, "rate", &cloudtaskspb.Queue{RateLimits: &cloudtaskspb.RateLimits{MaxDispatchesPerSecond: 5}})
		if q.GetRateLimits().GetMaxBurstSize() != 5 {
			t.Errorf("max_burst_size = %d, want 5", q.GetRateLimits().GetMaxBurstSize())
		}
		start := time.Now()
		for i := 0; i < 15; i++ {
			if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)}); err != nil {
				t.Fatal(err)
			}
		}
		ds := rc.await(t, 15, 10*time.Second)
		// A burst of 5, then 5 per second: the 15th is 2 s after the start.
		if el := ds[14].at.Sub(start); el < 1800*time.Millisecond || el > 3*time.Second {
			t.Errorf("15 tasks at 5/s took %v, want about 2s", el)
		}
	})
	t.Run("max_concurrent_dispatches", func(t *testing.T) {
		t.Parallel()
		c := newClient(t)
		rc := newReceiver(t, status200)
		rc.holdFor = 200 * time.Millisecond
		q := createQueue(t, c, "concurrency", &cloudtaskspb.Queue{RateLimits: &cloudtaskspb.RateLimits{MaxConcurrentDispatches: 2}})
		for i := 0; i < 8; i++ {
			if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)}); err != nil {
				t.Fatal(err)
			}
		}
		rc.await(t, 8, 10*time.Second)
		if m := rc.maxFlight.Load(); m != 2 {
			t.Errorf("at most %d deliveries in flight, want 2", m)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	for _, sc := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(sc), func(t *testing.T) {
			t.Parallel()
			c := newClient(t)
			rc := newReceiver(t, func(n int, w http.ResponseWriter) {
				if n == 1 {
					w.Header().Set("Retry-After", "2")
					w.WriteHeader(sc)
				}
			})
			q := createQueue(t, c, "retry-after", &cloudtaskspb.Queue{RetryConfig: retryConfig(5, 100*time.Millisecond, time.Second, 3)})
			if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)}); err != nil {
				t.Fatal(err)
			}
			ds := rc.await(t, 2, 6*time.Second)
			checkGaps(t, gaps(ds), []time.Duration{2 * time.Second}, 400*time.Millisecond)
		})
	}
}

func TestDispatchDeadline(t *testing.T) {
	t.Parallel()
	t.Run("bounds", func(t *testing.T) {
		t.Parallel()
		c := newClient(t)
		q := createQueue(t, c, "bounds", nil)
		tk := httpTask("", "http://127.0.0.1:1/")
		tk.DispatchDeadline = durationpb.New(time.Second)
		_, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: tk})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("dispatch_deadline 1s: err = %v, want InvalidArgument (Cloud Tasks accepts 15s..30m)", err)
		}
	})
	t.Run("exceeded", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, taskstest.WithDispatchDeadlineBounds(100*time.Millisecond, time.Hour))
		rc := newReceiver(t, status200)
		rc.holdFor = 5 * time.Second
		q := createQueue(t, c, "deadline", &cloudtaskspb.Queue{RetryConfig: retryConfig(2, 100*time.Millisecond, time.Second, 3)})
		tk := httpTask(q.Name+"/tasks/slow", rc.URL)
		tk.DispatchDeadline = durationpb.New(300 * time.Millisecond)
		if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: tk}); err != nil {
			t.Fatal(err)
		}
		rc.await(t, 1, 2*time.Second)
		var got *cloudtaskspb.Task
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			var err error
			got, err = c.GetTask(context.Background(), &cloudtaskspb.GetTaskRequest{Name: tk.Name})
			if err == nil && got.GetLastAttempt().GetResponseStatus() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if c := codes.Code(got.GetLastAttempt().GetResponseStatus().GetCode()); c != codes.DeadlineExceeded {
			t.Errorf("attempt past the deadline recorded %v, want DeadlineExceeded", c)
		}
		if el := got.GetLastAttempt().GetResponseTime().AsTime().Sub(got.GetLastAttempt().GetDispatchTime().AsTime()); el < 250*time.Millisecond || el > time.Second {
			t.Errorf("attempt took %v, want about the 300ms deadline", el)
		}
		rc.await(t, 2, 3*time.Second) // retried after a deadline
	})
}

func TestPauseResumeAndRunTask(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	rc := newReceiver(t, status200)
	q := createQueue(t, c, "paused", nil)
	ctx := context.Background()
	if _, err := c.PauseQueue(ctx, &cloudtaskspb.PauseQueueRequest{Name: q.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(q.Name+"/tasks/waits", rc.URL)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("paused queue dispatched %d tasks", n)
	}
	// RunTask ignores the pause.
	if _, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(q.Name+"/tasks/forced", rc.URL)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunTask(ctx, &cloudtaskspb.RunTaskRequest{Name: q.Name + "/tasks/forced"}); err != nil {
		t.Fatal(err)
	}
	ds := rc.await(t, 1, 2*time.Second)
	if ds[0].header.Get("X-CloudTasks-TaskName") != "forced" {
		t.Errorf("RunTask dispatched %q", ds[0].header.Get("X-CloudTasks-TaskName"))
	}
	// The forced task is deleted once its response is in: wait for that.
	var list []string
	var err error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if list, err = listTasks(c, q.Name); err != nil || len(list) == 1 {
			break
		}
	}
	if err != nil || len(list) != 1 || list[0] != q.Name+"/tasks/waits" {
		t.Errorf("ListTasks on the paused queue = %v, %v; want the waiting task", list, err)
	}
	if _, err := c.ResumeQueue(ctx, &cloudtaskspb.ResumeQueueRequest{Name: q.Name}); err != nil {
		t.Fatal(err)
	}
	rc.await(t, 2, 2*time.Second)
}

func listTasks(c *cloudtasks.Client, queue string) ([]string, error) {
	var names []string
	it := c.ListTasks(context.Background(), &cloudtaskspb.ListTasksRequest{Parent: queue, PageSize: 1})
	for {
		tk, err := it.Next()
		if err != nil {
			if err == iterator.Done {
				return names, nil
			}
			return names, err
		}
		names = append(names, tk.Name)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ctx := context.Background()
	q := createQueue(t, c, "errors", nil)
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"queue exists", func() error {
			_, err := c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: location, Queue: &cloudtaskspb.Queue{Name: q.Name}})
			return err
		}, codes.AlreadyExists},
		{"unknown queue", func() error {
			_, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: location + "/queues/nope"})
			return err
		}, codes.NotFound},
		{"task in unknown queue", func() error {
			_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: location + "/queues/nope", Task: httpTask("", "http://127.0.0.1/")})
			return err
		}, codes.NotFound},
		{"bad task id", func() error {
			_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(q.Name+"/tasks/has.dot", "http://127.0.0.1/")})
			return err
		}, codes.InvalidArgument},
		{"task of another queue", func() error {
			_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask(location+"/queues/other/tasks/x", "http://127.0.0.1/")})
			return err
		}, codes.InvalidArgument},
		{"relative url", func() error {
			_, err := c.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", "/relative")})
			return err
		}, codes.InvalidArgument},
		{"min_backoff above max_backoff", func() error {
			_, err := c.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: location, Queue: &cloudtaskspb.Queue{
				Name: location + "/queues/bad-retry", RetryConfig: retryConfig(3, time.Minute, time.Second, 1)}})
			return err
		}, codes.InvalidArgument},
		{"unknown task", func() error {
			return c.DeleteTask(ctx, &cloudtaskspb.DeleteTaskRequest{Name: q.Name + "/tasks/missing"})
		}, codes.NotFound},
		{"batch calls", func() error {
			_, err := c.BatchCreateTasks(ctx, &cloudtaskspb.BatchCreateTasksRequest{Parent: q.Name})
			return err
		}, codes.Unimplemented},
	}
	for _, tt := range tests {
		if got := status.Code(tt.call()); got != tt.want {
			t.Errorf("%s: code %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestQueueDefaultsAndUpdate(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	ctx := context.Background()
	q := createQueue(t, c, "defaults", nil)
	rc, rl := q.GetRetryConfig(), q.GetRateLimits()
	if rc.MaxAttempts != 100 || rc.MinBackoff.AsDuration() != 100*time.Millisecond || rc.MaxBackoff.AsDuration() != time.Hour || rc.MaxDoublings != 16 {
		t.Errorf("default retry config %v", rc)
	}
	if rl.MaxDispatchesPerSecond != 500 || rl.MaxConcurrentDispatches != 1000 || rl.MaxBurstSize != 100 || q.State != cloudtaskspb.Queue_RUNNING {
		t.Errorf("default rate limits %v state %v", rl, q.State)
	}
	upd := &cloudtaskspb.Queue{Name: q.Name, RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 7}}
	got, err := c.UpdateQueue(ctx, &cloudtaskspb.UpdateQueueRequest{Queue: upd, UpdateMask: nil})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetRetryConfig().MaxAttempts != 7 || got.GetRetryConfig().MinBackoff.AsDuration() != 100*time.Millisecond {
		t.Errorf("after update: %v", got.GetRetryConfig())
	}
	qs := c.ListQueues(ctx, &cloudtaskspb.ListQueuesRequest{Parent: location})
	first, err := qs.Next()
	if err != nil || first.Name != q.Name {
		t.Errorf("ListQueues first = %v, %v", first, err)
	}
	if err := c.DeleteQueue(ctx, &cloudtaskspb.DeleteQueueRequest{Name: q.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetQueue(ctx, &cloudtaskspb.GetQueueRequest{Name: q.Name}); status.Code(err) != codes.NotFound {
		t.Errorf("GetQueue after delete: %v", err)
	}
}

func TestMaxRetryDurationWithUnlimitedAttempts(t *testing.T) {
	t.Parallel()
	c, srv := newServer(t)
	rc := newReceiver(t, status500)
	q := createQueue(t, c, "duration", &cloudtaskspb.Queue{RetryConfig: &cloudtaskspb.RetryConfig{
		MaxAttempts: -1, MaxRetryDuration: durationpb.New(time.Second),
		MinBackoff: durationpb.New(300 * time.Millisecond), MaxBackoff: durationpb.New(300 * time.Millisecond),
	}})
	if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: httpTask("", rc.URL)}); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, srv, 5*time.Second)
	// Attempts at 0, .3, .6, .9, 1.2 s: the one at 1.2 s finds the duration spent.
	if n := len(rc.deliveries()); n < 4 || n > 6 {
		t.Errorf("got %d attempts within a 1s max_retry_duration at 300ms intervals, want about 5", n)
	}
}

// A task with an OIDC token reaches its target as a Cloud Run receiver
// gets it: the Google ID token's header and claims, the signature replaced
// by SIGNATURE_REMOVED_BY_GOOGLE; the audience is the one asked for, or
// the URL without its query when none is.
func TestOIDCTokenForwardedAsCloudRunDoes(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	rc := newReceiver(t, status200)
	q := createQueue(t, c, "oidc", nil)
	const sa = "imgpipe-pusher@test-project.iam.gserviceaccount.com"
	for i, aud := range []string{"https://deliver.example/fn", ""} {
		task := httpTask(fmt.Sprintf("%s/tasks/oidc-%d", q.Name, i), rc.URL+"/hook?x=1")
		task.GetHttpRequest().AuthorizationHeader = &cloudtaskspb.HttpRequest_OidcToken{OidcToken: &cloudtaskspb.OidcToken{ServiceAccountEmail: sa, Audience: aud}}
		if _, err := c.CreateTask(context.Background(), &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: task}); err != nil {
			t.Fatal(err)
		}
		d := rc.await(t, i+1, 5*time.Second)[i]
		tok, ok := strings.CutPrefix(d.header.Get("Authorization"), "Bearer ")
		parts := strings.Split(tok, ".")
		if !ok || len(parts) != 3 || parts[2] != "SIGNATURE_REMOVED_BY_GOOGLE" {
			t.Fatalf("Authorization %q is not a forwarded ID token", d.header.Get("Authorization"))
		}
		var claims struct {
			Iss, Aud, Email string
			EmailVerified   bool `json:"email_verified"`
			Exp, Iat        int64
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err == nil {
			err = json.Unmarshal(payload, &claims)
		}
		want := aud
		if want == "" {
			want = rc.URL + "/hook"
		}
		if err != nil || claims.Iss != "https://accounts.google.com" || claims.Aud != want || claims.Email != sa || !claims.EmailVerified ||
			claims.Exp <= time.Now().Unix() || claims.Iat > time.Now().Unix()+1 {
			t.Errorf("claims %+v (%v), want aud %s and email %s", claims, err, want, sa)
		}
	}
}
