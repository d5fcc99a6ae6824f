package localstack_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/cloudtasks/apiv2/cloudtaskspb"
	"cloud.google.com/go/firestore"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/imgpipe/imgpipe/functions/localstack"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/tasks"
)

// The tests here run against the emulators `make test` starts; without
// them they skip, unless IMGPIPE_REQUIRE_EMULATORS=1 (set by make test).
var (
	cfg        config.Config
	hostURL    string
	probeTopic string
)

func suffix() string { return emulatortest.Suffix() }

// stackMissing says why the emulators cannot be used; "" when they can.
var stackMissing string

// needStack skips (or, under make test, fails) a test when the emulators
// are not running.
func needStack(t *testing.T) {
	t.Helper()
	emulatortest.Need(t, stackMissing)
}

func TestMain(m *testing.M) {
	if stackMissing = emulatortest.Missing(emulatortest.All...); stackMissing != "" {
		os.Exit(m.Run()) // the tests that need the stack skip, naming what is missing
	}
	// Names of our own, so a test run never meets another's data.
	s := suffix()
	os.Setenv("IMGPIPE_BUCKET", "imgpipe-test-"+s)
	os.Setenv("IMGPIPE_IMAGES_TOPIC", "images-"+s)
	os.Setenv("IMGPIPE_WEBHOOK_QUEUE", "webhooks-"+s)
	os.Setenv("IMGPIPE_DEADLETTER_TOPIC", "dead-"+s)
	var err error
	ctx := context.Background()
	if hostURL, err = localstack.StartHost(ctx, "127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	localstack.LocalDefaults(hostURL)
	if cfg, err = config.Load(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := localstack.ProductionWiring(cfg, hostURL)
	w.Pushes = append(w.Pushes, localstack.Push{
		Topic: "probe-" + s, Subscription: "probe-push-" + s, AckDeadline: 30 * time.Second, MinBackoff: time.Second, MaxBackoff: 10 * time.Second,
		Endpoint: localstack.PushEndpoint(hostURL, "probeEvent", cfg.Project, "probe-"+s),
	})
	probeTopic = "probe-" + s
	if err := localstack.Wire(ctx, w); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Wire is idempotent: a second call finds everything in place.
	if err := localstack.Wire(ctx, w); err != nil {
		fmt.Fprintf(os.Stderr, "second Wire: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := localstack.Unwire(ctx, w); err != nil {
		fmt.Fprintln(os.Stderr, "Unwire:", err)
	}
	os.Exit(code)
}

func openStore(t *testing.T) *localstack.ProbeStore {
	t.Helper()
	fs, err := firestore.NewClient(context.Background(), cfg.Project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return &localstack.ProbeStore{FS: fs}
}

// awaitProbe polls Firestore until the probe function has recorded id.
func awaitProbe(t *testing.T, st *localstack.ProbeStore, id string, within time.Duration) localstack.Probe {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		p, found, err := st.Probe(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if found {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe %s not recorded within %v", id, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPubSubPushReachesCloudEventFunction(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	ps, err := pubsub.NewClient(ctx, cfg.Project)
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	pub := ps.Publisher(probeTopic)
	defer pub.Stop()
	start := time.Now()
	id, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("hello from pubsub"), Attributes: map[string]string{"requestId": "r1"}}).Get(ctx)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	st := openStore(t)
	p := awaitProbe(t, st, "pubsub-"+id, 15*time.Second)
	t.Logf("publish → push → CloudEvent function → Firestore in %v", time.Since(start))
	if p.Data != "hello from pubsub" || p.Attributes["requestId"] != "r1" {
		t.Errorf("probe saw data %q attributes %v", p.Data, p.Attributes)
	}
	if want := "//pubsub.googleapis.com/projects/" + cfg.Project + "/topics/" + probeTopic; p.Source != want {
		t.Errorf("event source = %q, want %q (topic read from the push path)", p.Source, want)
	}
}

func TestCloudTasksDeliversToHTTPFunction(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	tc, err := tasks.NewClient(ctx, cfg.TasksEmulatorHost)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	name := cfg.QueueName() + "/tasks/probe-" + suffix()
	task := &cloudtaskspb.Task{Name: name, MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{
		Url: hostURL + "/probeHTTP", HttpMethod: cloudtaskspb.HttpMethod_POST, Body: []byte(`{"event":"probe"}`),
	}}}
	if _, err := tc.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: cfg.QueueName(), Task: task}); err != nil {
		t.Fatalf("CreateTask: %v", err)
	}
	p := awaitProbe(t, openStore(t), "task-"+name[strings.LastIndex(name, "/")+1:], 10*time.Second)
	if p.Data != `{"event":"probe"}` || p.Source != cfg.WebhookQueue {
		t.Errorf("probe saw data %q from queue %q", p.Data, p.Source)
	}
	for h, want := range map[string]string{"X-Cloudtasks-Taskretrycount": "0", "X-Cloudtasks-Taskexecutioncount": "0", "User-Agent": "Google-Cloud-Tasks"} {
		if p.Headers[h] != want {
			t.Errorf("header %s = %q, want %q (all: %v)", h, p.Headers[h], want, p.Headers)
		}
	}
	_, err = tc.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: cfg.QueueName(), Task: task})
	if status.Code(err) != codes.AlreadyExists {
		t.Errorf("CreateTask with a used name: %v, want AlreadyExists", err)
	}
}

// The standalone emulator of the stack retries with the queue's backoff and
// stops after max_attempts, as the in-process one does in emulators/.
func TestCloudTasksRetriesOnTheStack(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	tc, err := tasks.NewClient(ctx, cfg.TasksEmulatorHost)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	var mu sync.Mutex
	var at []time.Time
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer target.Close()
	parent := "projects/" + cfg.Project + "/locations/" + cfg.Location
	q, err := tc.CreateQueue(ctx, &cloudtaskspb.CreateQueueRequest{Parent: parent, Queue: &cloudtaskspb.Queue{
		Name: parent + "/queues/retry-" + suffix(),
		RetryConfig: &cloudtaskspb.RetryConfig{MaxAttempts: 4, MinBackoff: durationpb.New(250 * time.Millisecond),
			MaxBackoff: durationpb.New(time.Second), MaxDoublings: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	task := &cloudtaskspb.Task{MessageType: &cloudtaskspb.Task_HttpRequest{HttpRequest: &cloudtaskspb.HttpRequest{Url: target.URL}}}
	if _, err := tc.CreateTask(ctx, &cloudtaskspb.CreateTaskRequest{Parent: q.Name, Task: task}); err != nil {
		t.Fatal(err)
	}
	// 250ms, 500ms, then linear: 250·2·(3−1) = 1000ms. Wait until the
	// queue has given up on the task.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		it := tc.ListTasks(ctx, &cloudtaskspb.ListTasksRequest{Parent: q.Name})
		if _, err := it.Next(); err == iterator.Done {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the task is still queued after 10s (%v)", err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 4 {
		t.Fatalf("%d attempts, want 4 (max_attempts)", len(at))
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second}
	for i, w := range want {
		if g := at[i+1].Sub(at[i]); g < w-50*time.Millisecond || g > w+300*time.Millisecond {
			t.Errorf("gap %d = %v, want %v", i+1, g, w)
		}
	}
}

func TestFirestoreRoundTrip(t *testing.T) {
	needStack(t)
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	id := "roundtrip-" + suffix()
	in := localstack.Probe{ID: id, Source: "test", Data: "é ✓", Attributes: map[string]string{"k": "v"}, ReceivedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := st.RecordProbe(ctx, in); err != nil {
		t.Fatal(err)
	}
	out, found, err := st.Probe(ctx, id)
	if err != nil || !found {
		t.Fatalf("Probe: found %v err %v", found, err)
	}
	if out.Data != in.Data || out.Attributes["k"] != "v" || !out.ReceivedAt.Equal(in.ReceivedAt) {
		t.Errorf("read back %+v, wrote %+v", out, in)
	}
	if _, found, err := st.Probe(ctx, "absent-"+suffix()); err != nil || found {
		t.Errorf("absent probe: found %v err %v", found, err)
	}
}

func TestGCSRoundTrip(t *testing.T) {
	needStack(t)
	t.Parallel()
	ctx := context.Background()
	gcs, err := storage.NewClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gcs.Close()
	name := "requests/r1/images/0 0.jpg"
	obj := gcs.Bucket(cfg.Bucket).Object(name)
	w := obj.NewWriter(ctx)
	w.ContentType = "image/jpeg"
	payload := []byte("\xff\xd8\xff not really a jpeg \xff\xd9")
	if _, err := w.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("storage.Writer.Close: %v", err)
	}
	r, err := obj.NewReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != string(payload) || r.Attrs.ContentType != "image/jpeg" {
		t.Errorf("read back %q (%s)", got, r.Attrs.ContentType)
	}
	// The link a person opens locally.
	link := os.Getenv("STORAGE_EMULATOR_HOST") + "/download/storage/v1/b/" + cfg.Bucket + "/o/" + url.PathEscape(name) + "?alt=media"
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != string(payload) {
		t.Errorf("GET %s: %d %q", link, resp.StatusCode, body)
	}
}
