package functions

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/store"
)

// The probe functions prove the wiring of a stack: a Pub/Sub push reaches a
// CloudEvent function, a Cloud Tasks task reaches an HTTP function. Each
// records what it received in Firestore (collection "probes").
func init() {
	functions.CloudEvent("probeEvent", probeEvent)
	pushTargets["probeEvent"] = probeEvent
	functions.HTTP("probeHTTP", probeHTTP)
}

// messagePublishedData is the data of a google.cloud.pubsub.topic.v1.messagePublished event.
type messagePublishedData struct {
	Message struct {
		Data       []byte            `json:"data"`
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

func probeEvent(ctx context.Context, e event.Event) error {
	var msg messagePublishedData
	if err := e.DataAs(&msg); err != nil {
		return fmt.Errorf("event.DataAs: %w", err)
	}
	d, err := loadDeps()
	if err != nil {
		return err
	}
	return d.store.RecordProbe(ctx, store.Probe{
		ID:         "pubsub-" + msg.Message.MessageID,
		Source:     e.Source(),
		Data:       string(msg.Message.Data),
		Attributes: msg.Message.Attributes,
		ReceivedAt: time.Now(),
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
	d, err := loadDeps()
	if err != nil {
		http.Error(w, "probeHTTP: "+err.Error(), http.StatusInternalServerError)
		return
	}
	if err := d.store.RecordProbe(r.Context(), store.Probe{
		ID: "task-" + id, Source: r.Header.Get("X-CloudTasks-QueueName"), Data: string(body), Headers: headers, ReceivedAt: time.Now(),
	}); err != nil {
		http.Error(w, "probeHTTP: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
