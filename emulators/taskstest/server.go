// Package taskstest is an emulator of Cloud Tasks (google.cloud.tasks.v2): a
// real gRPC server that the official cloud.google.com/go/cloudtasks client
// talks to, and that really dispatches HTTP-target tasks.
//
// It honours schedule_time, the queue's RetryConfig (max_attempts,
// max_retry_duration, min/max_backoff, max_doublings), its RateLimits
// (max_dispatches_per_second, max_concurrent_dispatches), dispatch_deadline,
// Retry-After on 429/503, task-name de-duplication (ALREADY_EXISTS for a name
// in use, or deleted or executed within the tombstone window), pause/resume,
// purge and RunTask, and sends the X-CloudTasks-* headers. App Engine targets,
// IAM, CMEK and the batch calls answer Unimplemented.
//
// Like pubsub/pstest it runs in-process (NewServer) or as a standalone binary
// (emulators/cmd/cloudtasks-emulator). State is in memory only.
package taskstest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Server is an in-memory Cloud Tasks v2 service.
type Server struct {
	cloudtaskspb.UnimplementedCloudTasksServer

	// Addr is the address ("127.0.0.1:port") the gRPC server listens on.
	Addr string

	opts   options
	gsrv   *grpc.Server
	lis    net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[string]*queue
	// change is closed, and replaced, whenever a dispatch ends or a task is
	// removed: WaitIdle waits on it.
	change chan struct{}
}

type options struct {
	httpClient   *http.Client
	tombstoneTTL time.Duration
	minDeadline  time.Duration
	maxDeadline  time.Duration
	logger       *slog.Logger
	now          func() time.Time
}

// Option configures a Server.
type Option func(*options)

// WithHTTPClient sets the client used to dispatch tasks. Redirects are never
// followed: a 3xx answer counts as a failed attempt, as in Cloud Tasks.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithTombstoneTTL sets how long the name of a deleted or executed task stays
// reserved (Cloud Tasks: about one hour). Default one hour.
func WithTombstoneTTL(d time.Duration) Option { return func(o *options) { o.tombstoneTTL = d } }

// WithDispatchDeadlineBounds sets the accepted range of a task's
// dispatch_deadline. Cloud Tasks accepts [15s, 30m], the default here; tests
// may lower the minimum to exercise deadlines quickly.
func WithDispatchDeadlineBounds(min, max time.Duration) Option {
	return func(o *options) { o.minDeadline, o.maxDeadline = min, max }
}

// WithLogger sets the structured logger (one line per dispatch attempt).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces the clock that stamps schedule, attempt and response
// times and measures how long a deleted or executed task's name stays
// reserved. Waiting for a scheduled task still runs on real timers.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WaitIdle blocks until no queue holds a task (each ran to success, gave
// up or was deleted) and no dispatch is in flight, or ctx ends: tests wait
// on it instead of sleeping. A paused queue with tasks is never idle.
func (s *Server) WaitIdle(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := true
		for _, q := range s.queues {
			if q.inflight > 0 || len(q.tasks) > 0 {
				idle = false
			}
		}
		ch := s.change
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// changedLocked wakes WaitIdle's callers to look again.
func (s *Server) changedLocked() {
	close(s.change)
	s.change = make(chan struct{})
}

// NewServer starts a server on a free loopback port.
func NewServer(opts ...Option) (*Server, error) {
	return NewServerWithAddress("127.0.0.1:0", opts...)
}

// NewServerWithAddress starts a server listening on addr.
func NewServerWithAddress(addr string, opts ...Option) (*Server, error) {
	o := options{
		tombstoneTTL: time.Hour,
		minDeadline:  15 * time.Second,
		maxDeadline:  30 * time.Minute,
		logger:       slog.New(slog.NewJSONHandler(os.Stderr, nil)),
		now:          time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.httpClient == nil {
		o.httpClient = &http.Client{}
	}
	hc := *o.httpClient
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	o.httpClient = &hc

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("net.Listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		Addr:   lis.Addr().String(),
		opts:   o,
		gsrv:   grpc.NewServer(),
		lis:    lis,
		ctx:    ctx,
		cancel: cancel,
		queues: map[string]*queue{},
		change: make(chan struct{}),
	}
	cloudtaskspb.RegisterCloudTasksServer(s.gsrv, s)
	go func() { _ = s.gsrv.Serve(lis) }()
	return s, nil
}

// Close stops the gRPC server and every dispatcher, and waits for in-flight
// dispatches to end.
func (s *Server) Close() error {
	s.gsrv.Stop()
	s.cancel()
	s.wg.Wait()
	return nil
}

// ---- queues ---------------------------------------------------------------

func (s *Server) ListQueues(_ context.Context, req *cloudtaskspb.ListQueuesRequest) (*cloudtaskspb.ListQueuesResponse, error) {
	if err := checkLocation(req.GetParent()); err != nil {
		return nil, err
	}
	if req.GetFilter() != "" {
		return nil, status.Error(codes.Unimplemented, "taskstest: ListQueues filter is not supported")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	prefix := req.GetParent() + "/queues/"
	for name := range s.queues {
		if len(name) > len(prefix) && name[:len(prefix)] == prefix {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	lo, hi, next, err := page(len(names), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &cloudtaskspb.ListQueuesResponse{NextPageToken: next}
	for _, n := range names[lo:hi] {
		resp.Queues = append(resp.Queues, proto.Clone(s.queues[n].pb).(*cloudtaskspb.Queue))
	}
	return resp, nil
}

func (s *Server) GetQueue(_ context.Context, req *cloudtaskspb.GetQueueRequest) (*cloudtaskspb.Queue, error) {
	if err := checkQueueName(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	return proto.Clone(q.pb).(*cloudtaskspb.Queue), nil
}

func (s *Server) CreateQueue(_ context.Context, req *cloudtaskspb.CreateQueueRequest) (*cloudtaskspb.Queue, error) {
	if err := checkLocation(req.GetParent()); err != nil {
		return nil, err
	}
	in := req.GetQueue()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "queue is required")
	}
	if err := checkQueueName(in.GetName()); err != nil {
		return nil, err
	}
	if want := req.GetParent() + "/queues/" + shortID(in.GetName()); in.GetName() != want {
		return nil, status.Errorf(codes.InvalidArgument, "queue name %q is not under parent %q", in.GetName(), req.GetParent())
	}
	pb, err := normalizeQueue(in)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.queues[pb.Name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "queue %s already exists", pb.Name)
	}
	s.startQueueLocked(pb)
	return proto.Clone(pb).(*cloudtaskspb.Queue), nil
}

func (s *Server) UpdateQueue(_ context.Context, req *cloudtaskspb.UpdateQueueRequest) (*cloudtaskspb.Queue, error) {
	in := req.GetQueue()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "queue is required")
	}
	if err := checkQueueName(in.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, ok := s.queues[in.GetName()]
	if !ok {
		// Cloud Tasks creates the queue when it does not exist.
		pb, err := normalizeQueue(in)
		if err != nil {
			return nil, err
		}
		s.startQueueLocked(pb)
		return proto.Clone(pb).(*cloudtaskspb.Queue), nil
	}
	merged := proto.Clone(q.pb).(*cloudtaskspb.Queue)
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		paths = []string{"rate_limits", "retry_config", "http_target", "stackdriver_logging_config"}
	}
	for _, p := range paths {
		switch p {
		case "rate_limits":
			merged.RateLimits = in.GetRateLimits()
		case "rate_limits.max_dispatches_per_second":
			merged.RateLimits.MaxDispatchesPerSecond = in.GetRateLimits().GetMaxDispatchesPerSecond()
		case "rate_limits.max_concurrent_dispatches":
			merged.RateLimits.MaxConcurrentDispatches = in.GetRateLimits().GetMaxConcurrentDispatches()
		case "retry_config":
			merged.RetryConfig = in.GetRetryConfig()
		case "retry_config.max_attempts":
			merged.RetryConfig.MaxAttempts = in.GetRetryConfig().GetMaxAttempts()
		case "retry_config.max_retry_duration":
			merged.RetryConfig.MaxRetryDuration = in.GetRetryConfig().GetMaxRetryDuration()
		case "retry_config.min_backoff":
			merged.RetryConfig.MinBackoff = in.GetRetryConfig().GetMinBackoff()
		case "retry_config.max_backoff":
			merged.RetryConfig.MaxBackoff = in.GetRetryConfig().GetMaxBackoff()
		case "retry_config.max_doublings":
			merged.RetryConfig.MaxDoublings = in.GetRetryConfig().GetMaxDoublings()
		case "http_target":
			merged.HttpTarget = in.GetHttpTarget()
		case "stackdriver_logging_config":
			merged.StackdriverLoggingConfig = in.GetStackdriverLoggingConfig()
		default:
			return nil, status.Errorf(codes.InvalidArgument, "update_mask path %q is not supported", p)
		}
	}
	pb, err := normalizeQueue(merged)
	if err != nil {
		return nil, err
	}
	pb.State, pb.PurgeTime = q.pb.State, q.pb.PurgeTime
	q.pb = pb
	q.configure()
	q.signal()
	return proto.Clone(pb).(*cloudtaskspb.Queue), nil
}

func (s *Server) DeleteQueue(_ context.Context, req *cloudtaskspb.DeleteQueueRequest) (*emptypb.Empty, error) {
	if err := checkQueueName(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	q.stop()
	delete(s.queues, req.GetName())
	s.changedLocked()
	return &emptypb.Empty{}, nil
}

func (s *Server) PurgeQueue(_ context.Context, req *cloudtaskspb.PurgeQueueRequest) (*cloudtaskspb.Queue, error) {
	if err := checkQueueName(req.GetName()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetName())
	if err != nil {
		return nil, err
	}
	now := s.opts.now()
	for name := range q.tasks {
		q.removeLocked(name, now, s.opts.tombstoneTTL)
	}
	s.changedLocked()
	q.pb.PurgeTime = timestamppb.New(now)
	return proto.Clone(q.pb).(*cloudtaskspb.Queue), nil
}

func (s *Server) PauseQueue(_ context.Context, req *cloudtaskspb.PauseQueueRequest) (*cloudtaskspb.Queue, error) {
	return s.setState(req.GetName(), cloudtaskspb.Queue_PAUSED)
}

func (s *Server) ResumeQueue(_ context.Context, req *cloudtaskspb.ResumeQueueRequest) (*cloudtaskspb.Queue, error) {
	return s.setState(req.GetName(), cloudtaskspb.Queue_RUNNING)
}

func (s *Server) setState(name string, st cloudtaskspb.Queue_State) (*cloudtaskspb.Queue, error) {
	if err := checkQueueName(name); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(name)
	if err != nil {
		return nil, err
	}
	q.pb.State = st
	q.signal()
	return proto.Clone(q.pb).(*cloudtaskspb.Queue), nil
}

func (s *Server) queueLocked(name string) (*queue, error) {
	q, ok := s.queues[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "queue %s does not exist", name)
	}
	return q, nil
}

// normalizeQueue validates a queue and fills the service defaults.
func normalizeQueue(in *cloudtaskspb.Queue) (*cloudtaskspb.Queue, error) {
	if in.GetAppEngineRoutingOverride() != nil {
		return nil, status.Error(codes.Unimplemented, "taskstest: App Engine routing is not supported")
	}
	if in.GetHttpTarget().GetUriOverride() != nil {
		return nil, status.Error(codes.Unimplemented, "taskstest: http_target.uri_override is not supported")
	}
	rc, err := normalizeRetryConfig(in.GetRetryConfig())
	if err != nil {
		return nil, err
	}
	rl := &cloudtaskspb.RateLimits{
		MaxDispatchesPerSecond:  defaultMaxDispatchesPerSecond,
		MaxConcurrentDispatches: defaultMaxConcurrentDispatches,
	}
	if r := in.GetRateLimits(); r != nil {
		if r.MaxDispatchesPerSecond < 0 || r.MaxDispatchesPerSecond > maxMaxDispatchesPerSecond {
			return nil, status.Errorf(codes.InvalidArgument, "rate_limits.max_dispatches_per_second must be in (0, %d], got %v", maxMaxDispatchesPerSecond, r.MaxDispatchesPerSecond)
		}
		if r.MaxDispatchesPerSecond > 0 {
			rl.MaxDispatchesPerSecond = r.MaxDispatchesPerSecond
		}
		if r.MaxConcurrentDispatches < 0 || r.MaxConcurrentDispatches > maxMaxConcurrentDispatches {
			return nil, status.Errorf(codes.InvalidArgument, "rate_limits.max_concurrent_dispatches must be in (0, %d], got %d", maxMaxConcurrentDispatches, r.MaxConcurrentDispatches)
		}
		if r.MaxConcurrentDispatches > 0 {
			rl.MaxConcurrentDispatches = r.MaxConcurrentDispatches
		}
	}
	rl.MaxBurstSize = burstFor(rl.MaxDispatchesPerSecond)
	out := &cloudtaskspb.Queue{
		Name:                     in.GetName(),
		HttpTarget:               in.GetHttpTarget(),
		RateLimits:               rl,
		RetryConfig:              rc,
		State:                    cloudtaskspb.Queue_RUNNING,
		StackdriverLoggingConfig: in.GetStackdriverLoggingConfig(),
	}
	return out, nil
}

// burstFor is the output-only max_burst_size the service derives from the
// rate: here one second's worth of tokens, at least 1 and at most 100.
func burstFor(rate float64) int32 {
	b := int32(rate)
	if b < 1 {
		b = 1
	}
	if b > 100 {
		b = 100
	}
	return b
}

// ---- tasks ----------------------------------------------------------------

func (s *Server) ListTasks(_ context.Context, req *cloudtaskspb.ListTasksRequest) (*cloudtaskspb.ListTasksResponse, error) {
	if err := checkQueueName(req.GetParent()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetParent())
	if err != nil {
		return nil, err
	}
	all := make([]*task, 0, len(q.tasks))
	for _, t := range q.tasks {
		all = append(all, t)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].less(all[j]) })
	lo, hi, next, err := page(len(all), req.GetPageSize(), req.GetPageToken())
	if err != nil {
		return nil, err
	}
	resp := &cloudtaskspb.ListTasksResponse{NextPageToken: next}
	for _, t := range all[lo:hi] {
		resp.Tasks = append(resp.Tasks, t.view(req.GetResponseView()))
	}
	return resp, nil
}

func (s *Server) GetTask(_ context.Context, req *cloudtaskspb.GetTaskRequest) (*cloudtaskspb.Task, error) {
	qname, _, err := splitTaskName(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(qname)
	if err != nil {
		return nil, err
	}
	t, ok := q.tasks[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s does not exist", req.GetName())
	}
	return t.view(req.GetResponseView()), nil
}

func (s *Server) CreateTask(_ context.Context, req *cloudtaskspb.CreateTaskRequest) (*cloudtaskspb.Task, error) {
	if err := checkQueueName(req.GetParent()); err != nil {
		return nil, err
	}
	in := req.GetTask()
	if in == nil {
		return nil, status.Error(codes.InvalidArgument, "task is required")
	}
	hr := in.GetHttpRequest()
	if hr == nil {
		if in.GetAppEngineHttpRequest() != nil {
			return nil, status.Error(codes.Unimplemented, "taskstest: App Engine tasks are not supported, use http_request")
		}
		return nil, status.Error(codes.InvalidArgument, "task.http_request is required")
	}
	if err := checkHTTPRequest(hr); err != nil {
		return nil, err
	}
	now := s.opts.now()
	deadline := defaultDispatchDeadline
	if d := in.GetDispatchDeadline(); d != nil {
		deadline = d.AsDuration()
		if deadline < s.opts.minDeadline || deadline > s.opts.maxDeadline {
			return nil, status.Errorf(codes.InvalidArgument, "dispatch_deadline must be in [%v, %v], got %v", s.opts.minDeadline, s.opts.maxDeadline, deadline)
		}
	}
	var taskRetry *cloudtaskspb.RetryConfig
	if in.GetRetryConfig() != nil {
		rc, err := normalizeRetryConfig(in.GetRetryConfig())
		if err != nil {
			return nil, err
		}
		taskRetry = rc
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(req.GetParent())
	if err != nil {
		return nil, err
	}
	name := in.GetName()
	if name == "" {
		name = req.GetParent() + "/tasks/" + newTaskID()
	} else {
		qname, _, err := splitTaskName(name)
		if err != nil {
			return nil, err
		}
		if qname != req.GetParent() {
			return nil, status.Errorf(codes.InvalidArgument, "task %s is not in queue %s", name, req.GetParent())
		}
		if _, ok := q.tasks[name]; ok {
			return nil, status.Errorf(codes.AlreadyExists, "task %s already exists", name)
		}
		if until, ok := q.tombstones[name]; ok && now.Before(until) {
			return nil, status.Errorf(codes.AlreadyExists, "task %s was deleted or executed recently; its name is reserved until %s", name, until.UTC().Format(time.RFC3339))
		}
	}
	sched := now
	if in.GetScheduleTime() != nil && in.GetScheduleTime().AsTime().After(now) {
		sched = in.GetScheduleTime().AsTime()
	}
	pb := &cloudtaskspb.Task{
		Name:             name,
		MessageType:      &cloudtaskspb.Task_HttpRequest{HttpRequest: proto.Clone(hr).(*cloudtaskspb.HttpRequest)},
		ScheduleTime:     timestamppb.New(sched),
		CreateTime:       timestamppb.New(now),
		DispatchDeadline: durationpb.New(deadline),
		RetryConfig:      taskRetry,
	}
	if pb.GetHttpRequest().HttpMethod == cloudtaskspb.HttpMethod_HTTP_METHOD_UNSPECIFIED {
		pb.GetHttpRequest().HttpMethod = cloudtaskspb.HttpMethod_POST
	}
	q.seq++
	t := &task{pb: pb, seq: q.seq, index: -1}
	q.tasks[name] = t
	q.pushLocked(t)
	q.signal()
	return t.view(req.GetResponseView()), nil
}

func (s *Server) DeleteTask(_ context.Context, req *cloudtaskspb.DeleteTaskRequest) (*emptypb.Empty, error) {
	qname, _, err := splitTaskName(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(qname)
	if err != nil {
		return nil, err
	}
	if _, ok := q.tasks[req.GetName()]; !ok {
		return nil, status.Errorf(codes.NotFound, "task %s does not exist", req.GetName())
	}
	q.removeLocked(req.GetName(), s.opts.now(), s.opts.tombstoneTTL)
	s.changedLocked()
	return &emptypb.Empty{}, nil
}

// RunTask dispatches a task now, whatever its schedule time, the queue's
// rate limits or its paused state.
func (s *Server) RunTask(_ context.Context, req *cloudtaskspb.RunTaskRequest) (*cloudtaskspb.Task, error) {
	qname, _, err := splitTaskName(req.GetName())
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q, err := s.queueLocked(qname)
	if err != nil {
		return nil, err
	}
	t, ok := q.tasks[req.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "task %s does not exist", req.GetName())
	}
	if !t.dispatching {
		t.pb.ScheduleTime = timestamppb.New(s.opts.now())
		q.beginLocked(t, s.opts.now())
		s.wg.Add(1)
		go s.dispatch(q, t)
	}
	return t.view(req.GetResponseView()), nil
}

func checkHTTPRequest(hr *cloudtaskspb.HttpRequest) error {
	if hr.GetUrl() == "" {
		return status.Error(codes.InvalidArgument, "http_request.url is required")
	}
	req, err := http.NewRequest(http.MethodPost, hr.GetUrl(), nil)
	if err != nil || (req.URL.Scheme != "http" && req.URL.Scheme != "https") || req.URL.Host == "" {
		return status.Errorf(codes.InvalidArgument, "http_request.url %q must be an absolute http or https URL", hr.GetUrl())
	}
	if len(hr.GetUrl()) > 2083 {
		return status.Errorf(codes.InvalidArgument, "http_request.url is longer than 2083 characters")
	}
	if m := hr.GetHttpMethod(); (m == cloudtaskspb.HttpMethod_GET || m == cloudtaskspb.HttpMethod_HEAD || m == cloudtaskspb.HttpMethod_DELETE) && len(hr.GetBody()) > 0 {
		return status.Errorf(codes.InvalidArgument, "http_request.body is only allowed with POST, PUT or PATCH, not %v", m)
	}
	return nil
}
