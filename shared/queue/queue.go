// Package queue is imgpipe's Pub/Sub adapter: one message per image, with
// everything the compress function needs to do its work without reading
// the request's products.
package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"cloud.google.com/go/pubsub/v2"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// PushData is the data of a google.cloud.pubsub.topic.v1.messagePublished
// event: the push envelope that functions-framework-go (locally) and
// Eventarc (deployed) hand a CloudEvent function.
type PushData struct {
	Message struct {
		Data       []byte            `json:"data"`
		Attributes map[string]string `json:"attributes"`
		MessageID  string            `json:"messageId"`
	} `json:"message"`
	Subscription    string `json:"subscription"`
	DeliveryAttempt int    `json:"deliveryAttempt"` // only with a dead-letter policy, and dropped by functions-framework-go
}

// ImageMessage is the body of one image's message.
type ImageMessage struct {
	RequestID string         `json:"requestId"`
	Image     batch.ImageRef `json:"image"`
	URL       string         `json:"url"`
	Quality   int            `json:"quality"`
	// Sizing is how the request sizes its outputs; nil keeps the image's
	// size and makes no extra output.
	Sizing *batch.Sizing `json:"sizing,omitempty"`
	Shard  int           `json:"shard"`
	// Trace links the image's log lines to its upload's
	// (projects/P/traces/ID); empty when the upload had none.
	Trace string `json:"trace,omitempty"`
	// Copies are the request's other images with the same URL: fetched
	// and compressed once, each recorded with this image's outcome.
	Copies []batch.ShardedRef `json:"copies,omitempty"`
	// Republished counts the sweep's republishings of this image: a
	// republished message may duplicate one still queued, so its delivery
	// looks for an existing result first.
	Republished int `json:"republished,omitempty"`
}

// Encode is the message data.
func (m ImageMessage) Encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

// Decode parses a message's data; a malformed one is permanent.
func Decode(data []byte) (ImageMessage, error) {
	var m ImageMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fault.Wrap(fault.Permanent, "bad_message", err, "undecodable image message")
	}
	if m.RequestID == "" || m.URL == "" || m.Quality < 1 || m.Quality > 100 || m.Image.Product < 0 || m.Image.URL < 0 || m.Shard < 0 {
		return m, fault.New(fault.Permanent, "bad_message", "incomplete image message %s", data)
	}
	if z := m.Sizing; z != nil {
		if len(z.Sizes) > batch.MaxSizes || z.MaxWidth < 0 || z.MaxHeight < 0 {
			return m, fault.New(fault.Permanent, "bad_message", "image message with bad sizing %s", data)
		}
		for _, sz := range z.Sizes {
			if sz.Name == "" || sz.Width < 0 || sz.Height < 0 || sz.Width+sz.Height == 0 {
				return m, fault.New(fault.Permanent, "bad_message", "image message with a bad size %s", data)
			}
		}
	}
	for _, c := range m.Copies {
		if c.Product < 0 || c.URL < 0 || c.Shard < 0 {
			return m, fault.New(fault.Permanent, "bad_message", "image message with a bad copy %s", data)
		}
	}
	return m, nil
}

// Publisher publishes image messages to one topic.
type Publisher struct {
	client    *pubsub.Client
	pub       *pubsub.Publisher
	published atomic.Int64
}

// NewPublisher connects to topic (an ID or a full name); the client honours
// PUBSUB_EMULATOR_HOST.
func NewPublisher(ctx context.Context, project, topic string) (*Publisher, error) {
	c, err := pubsub.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("pubsub.NewClient: %w", err)
	}
	p := c.Publisher(topic)
	// Batches of up to 1000 messages; never more than 10k unacknowledged
	// publishes in memory, blocking rather than failing.
	p.PublishSettings.CountThreshold = 1000
	p.PublishSettings.FlowControlSettings.MaxOutstandingMessages = 10_000
	p.PublishSettings.FlowControlSettings.LimitExceededBehavior = pubsub.FlowControlBlock
	return &Publisher{client: c, pub: p}, nil
}

// PublishAll publishes every message, batched by the client, and returns the
// indexes of those that could not be published (the client has already
// retried transient errors).
func (p *Publisher) PublishAll(ctx context.Context, msgs []ImageMessage) (failed []int, lastErr error) {
	results := make([]*pubsub.PublishResult, len(msgs))
	for i, m := range msgs {
		results[i] = p.pub.Publish(ctx, &pubsub.Message{Data: m.Encode(), Attributes: map[string]string{"requestId": m.RequestID}})
	}
	for i, r := range results {
		if _, err := r.Get(ctx); err != nil {
			failed = append(failed, i)
			lastErr = err
		} else {
			p.published.Add(1)
		}
	}
	return failed, lastErr
}

// Published is how many messages this publisher has published.
func (p *Publisher) Published() int64 { return p.published.Load() }

// Close flushes and releases the publisher.
func (p *Publisher) Close() error {
	p.pub.Stop()
	return p.client.Close()
}
