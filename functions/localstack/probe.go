package localstack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/firestore"
	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/queue"
)

// The probes prove the wiring of a stack: a Pub/Sub push reaches a
// CloudEvent function (/probeEvent/…), a Cloud Tasks task reaches an HTTP
// function (/probeHTTP). Each records what it received in Firestore
// (collection "probes"). They are registered on local hosts only.
const (
	ProbeEventPath = "/probeEvent/"
	ProbeHTTPPath  = "/probeHTTP"
)

var probeStore = sync.OnceValues(func() (*ProbeStore, error) {
	fs, err := firestore.NewClient(context.Background(), os.Getenv("GOOGLE_CLOUD_PROJECT"))
	if err != nil {
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &ProbeStore{FS: fs}, nil
})

// Probe is what a wiring probe function saw: proof that a trigger reached it.
type Probe struct {
	ID         string            `firestore:"id"`
	Source     string            `firestore:"source"`
	Data       string            `firestore:"data"`
	Attributes map[string]string `firestore:"attributes,omitempty"`
	Headers    map[string]string `firestore:"headers,omitempty"`
	ReceivedAt time.Time         `firestore:"receivedAt"`
}

// ProbeStore keeps probes in Firestore (collection "probes").
type ProbeStore struct{ FS *firestore.Client }

// RecordProbe stores p under its ID (a redelivery overwrites it).
func (s *ProbeStore) RecordProbe(ctx context.Context, p Probe) error {
	if _, err := s.FS.Collection("probes").Doc(p.ID).Set(ctx, p); err != nil {
		return fmt.Errorf("firestore.Set: %w", err)
	}
	return nil
}

// Probe reads a recorded probe; found is false when there is none yet.
func (s *ProbeStore) Probe(ctx context.Context, id string) (Probe, bool, error) {
	snap, err := s.FS.Collection("probes").Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Probe{}, false, nil
	}
	if err != nil {
		return Probe{}, false, fmt.Errorf("firestore.Get probe %s: %w", id, err)
	}
	var p Probe
	if err := snap.DataTo(&p); err != nil {
		return Probe{}, false, fmt.Errorf("firestore.DataTo probe %s: %w", id, err)
	}
	return p, true, nil
}

func registerProbes(ctx context.Context) error {
	if err := funcframework.RegisterCloudEventFunctionContext(ctx, ProbeEventPath, probeEvent); err != nil {
		return fmt.Errorf("funcframework.RegisterCloudEventFunctionContext: %w", err)
	}
	if err := funcframework.RegisterHTTPFunctionContext(ctx, ProbeHTTPPath, probeHTTP); err != nil {
		return fmt.Errorf("funcframework.RegisterHTTPFunctionContext: %w", err)
	}
	return nil
}

func probeEvent(ctx context.Context, e event.Event) error {
	var msg queue.PushData
	if err := e.DataAs(&msg); err != nil {
		return fmt.Errorf("event.DataAs: %w", err)
	}
	st, err := probeStore()
	if err != nil {
		return err
	}
	return st.RecordProbe(ctx, Probe{
		ID: "pubsub-" + msg.Message.MessageID, Source: e.Source(), Data: string(msg.Message.Data),
		Attributes: msg.Message.Attributes, ReceivedAt: time.Now(),
	})
}

func probeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-CloudTasks-TaskName")
	if id == "" {
		http.Error(w, "probeHTTP: X-CloudTasks-TaskName header is required", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "probeHTTP: reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	headers := map[string]string{}
	for k := range r.Header {
		if strings.HasPrefix(k, "X-Cloudtasks-") || k == "User-Agent" {
			headers[k] = r.Header.Get(k)
		}
	}
	st, err := probeStore()
	if err != nil {
		http.Error(w, "probeHTTP: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err := st.RecordProbe(r.Context(), Probe{
		ID: "task-" + id, Source: r.Header.Get("X-CloudTasks-QueueName"), Data: string(body), Headers: headers, ReceivedAt: time.Now(),
	}); err != nil {
		http.Error(w, "probeHTTP: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
