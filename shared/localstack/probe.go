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

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/queue"
	"github.com/imgpipe/imgpipe/shared/store"
)

// The probes prove the wiring of a stack: a Pub/Sub push reaches a
// CloudEvent function (/probeEvent/…), a Cloud Tasks task reaches an HTTP
// function (/probeHTTP). Each records what it received in Firestore
// (collection "probes"). They are registered on local hosts only.
const (
	ProbeEventPath = "/probeEvent/"
	ProbeHTTPPath  = "/probeHTTP"
)

var probeStore = sync.OnceValues(func() (*store.Store, error) {
	return store.Open(context.Background(), os.Getenv("GOOGLE_CLOUD_PROJECT"))
})

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
	return st.RecordProbe(ctx, store.Probe{
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
	if err := st.RecordProbe(r.Context(), store.Probe{
		ID: "task-" + id, Source: r.Header.Get("X-CloudTasks-QueueName"), Data: string(body), Headers: headers, ReceivedAt: time.Now(),
	}); err != nil {
		http.Error(w, "probeHTTP: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
