package functions

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
)

// pushEvent builds the CloudEvent functions-framework makes of a push.
func pushEvent(t *testing.T, m queue.ImageMessage, attrs map[string]string) event.Event {
	t.Helper()
	e := event.New()
	e.SetID("msg-" + emulatortest.Suffix())
	e.SetType("google.cloud.pubsub.topic.v1.messagePublished")
	e.SetSource("//pubsub.googleapis.com/projects/p/topics/dead")
	data := map[string]any{"message": map[string]any{"data": m.Encode(), "attributes": attrs, "messageId": e.ID()}, "subscription": "projects/p/subscriptions/s"}
	b, _ := json.Marshal(data)
	if err := e.SetData("application/json", b); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDeadLetterRecordsTheImageOnce(t *testing.T) {
	needStack(t)
	t.Parallel()
	d, err := loadDeps()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	products := []batch.Product{{SerialNumber: "1", ProductName: "p", InputURLs: []string{"https://img.example/a.jpg"}}}
	r, err := d.store.CreateRequest(ctx, batch.Request{ID: pipeline.NewRequestID(), TotalImages: 1, Quality: 50}, products)
	if err != nil {
		t.Fatal(err)
	}
	m := queue.ImageMessage{RequestID: r.ID, URL: products[0].InputURLs[0], Quality: 50}
	e := pushEvent(t, m, map[string]string{"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
	for i := 0; i < 2; i++ { // a redelivered dead letter changes nothing
		if err := deadLetter(ctx, e); err != nil {
			t.Fatalf("deadLetter: %v", err)
		}
	}
	v, err := d.svc.Status(ctx, r.ID, "", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != batch.Failed || v.FailedImages != 1 || len(v.Products[0].Errors) != 1 || v.Products[0].Errors[0].Reason != "dead_lettered" {
		t.Errorf("status after a dead letter: %+v", v)
	}
	comp, _, _ := d.store.GetCompletion(ctx, r.ID)
	if comp.HookCalls != 1 {
		t.Errorf("hook called %d times, want 1", comp.HookCalls)
	}
	// An undecodable message is acknowledged, not retried forever.
	bad := pushEvent(t, queue.ImageMessage{}, nil)
	if err := deadLetter(ctx, bad); err != nil {
		t.Errorf("undecodable dead letter: %v, want acknowledged", err)
	}
	if err := compressImage(ctx, bad); err != nil {
		t.Errorf("undecodable image message: %v, want acknowledged", err)
	}
}
