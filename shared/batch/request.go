package batch

import (
	"context"
	"time"
)

// Request is a request's top document.
type Request struct {
	ID           string    `firestore:"id"`
	Status       Status    `firestore:"status"` // PENDING until the completion sets COMPLETED or FAILED
	TotalImages  int       `firestore:"totalImages"`
	ProductCount int       `firestore:"productCount"`
	Shards       int       `firestore:"shards"`
	ChunkStarts  []int     `firestore:"chunkStarts"`
	Quality      int       `firestore:"quality"`
	Sizing       *Sizing   `firestore:"sizing,omitempty"` // nil when the request resizes nothing
	WebhookURL   string    `firestore:"webhookUrl,omitempty"`
	Owner        string    `firestore:"owner,omitempty"`
	BaseURL      string    `firestore:"baseUrl,omitempty"` // the API's base URL the request came through, for links
	CreatedAt    time.Time `firestore:"createdAt"`
	CompletedAt  time.Time `firestore:"completedAt,omitempty"`
	Processed    int       `firestore:"processedImages"` // final, set at completion
	Failed       int       `firestore:"failedImages"`
}

// ChunkEnd is the product index one past chunk ci's last product.
func (r Request) ChunkEnd(ci int) int {
	if ci+1 < len(r.ChunkStarts) {
		return r.ChunkStarts[ci+1]
	}
	return r.ProductCount
}

// Completion is the request's completion record.
type Completion struct {
	Status    Status    `firestore:"status"`
	At        time.Time `firestore:"at"`
	HookFired bool      `firestore:"hookFired"`
	HookCalls int       `firestore:"hookCalls"`
}

// ImageStall is what the sweep knows of an image's deliveries.
type ImageStall struct {
	// SeenAt is when a delivery of the image last showed it was alive (a
	// counted failure, a wait a host asked for) or the sweep republished
	// it; zero when never.
	SeenAt      time.Time
	Republished int // times the sweep republished it
}

// Counter shards: each image counts in one shard of its request, so no
// document takes more than its share of Firestore's write rate.
const (
	// MaxShards bounds the counter shards of one request.
	MaxShards = 64
	// imagesPerShard aims at about this many images a shard.
	imagesPerShard = 100
)

// ShardCount is how many counter shards a request of total images gets.
func ShardCount(total int) int {
	n := (total + imagesPerShard - 1) / imagesPerShard
	return max(1, min(MaxShards, n))
}

// ImageShard is the shard the image with running index i (in input order,
// over every product's URLs) counts in.
func ImageShard(i, shards int) int { return i % shards }

// ShardOf is the shard an image counts in.
func ShardOf(r ImageRef, productFirstImage []int, shards int) int {
	return ImageShard(productFirstImage[r.Product]+r.URL, shards)
}

// FirstImageIndex returns, per product, the running index of its first image.
func FirstImageIndex(products []Product) []int {
	out := make([]int, len(products))
	n := 0
	for i, p := range products {
		out[i] = n
		n += len(p.InputURLs)
	}
	return out
}

// Webhook delivery states.
const (
	WebhookPending    = "PENDING"    // the request has not finished
	WebhookDelivering = "DELIVERING" // enqueued, or failed attempts with retries left
	WebhookDelivered  = "DELIVERED"
	WebhookFailed     = "FAILED" // every attempt failed
)

// WebhookState is requests/{id}/webhook/state.
type WebhookState struct {
	Status         string    `firestore:"status"`
	Attempts       int       `firestore:"attempts"`
	LastAttemptAt  time.Time `firestore:"lastAttemptAt,omitempty"`
	LastStatusCode int       `firestore:"lastStatusCode,omitempty"`
	LastError      string    `firestore:"lastError"`
	Redeliveries   int       `firestore:"redeliveries"`
}

// WebhookAttempt is one attempt, requests/{id}/webhookAttempts/{task-retry}.
type WebhookAttempt struct {
	Task       string    `firestore:"task"`
	Retry      int       `firestore:"retry"` // X-CloudTasks-TaskRetryCount
	At         time.Time `firestore:"at"`
	StatusCode int       `firestore:"statusCode,omitempty"`
	Error      string    `firestore:"error,omitempty"`
	DurationMS int64     `firestore:"durationMs"`
	Outcome    string    `firestore:"outcome"` // the state it left the webhook in
}

// Staging stores the products of an upload while it is read, a chunk at a
// time, so the upload's size does not decide the memory it takes; Commit
// then records them as a request, Discard drops them.
type Staging interface {
	ID() string
	Add(p Product) error
	Images() int
	// URLCounts returns each product's URL count, in input order.
	URLCounts() []int32
	Commit(ctx context.Context, r Request) (Request, error)
	Discard(ctx context.Context)
}
