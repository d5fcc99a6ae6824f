// Package functions is imgpipe's edge: every Cloud Function entry point,
// registered with functions-framework-go in init(). Handlers decode the
// request, call shared/pipeline and map errors (fault kinds) to HTTP status
// or to ack-or-retry; they hold no business logic.
//
// Every function ships in every deployment (the buildpack builds the root
// package, which imports this one), so cloud clients are created lazily,
// once per instance, by the first call that needs them.
package functions

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/access"
	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/blob"
	"github.com/imgpipe/imgpipe/shared/cloudlog"
	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/imagework"
	"github.com/imgpipe/imgpipe/shared/outbound"
	"github.com/imgpipe/imgpipe/shared/pipeline"
	"github.com/imgpipe/imgpipe/shared/queue"
	"github.com/imgpipe/imgpipe/shared/store"
	"github.com/imgpipe/imgpipe/shared/tasks"
	"github.com/imgpipe/imgpipe/shared/viewlink"
	"github.com/imgpipe/imgpipe/shared/webhook"
)

// Entry point names, as Terraform deploys them.
const (
	FnAPI        = "api"            // HTTP: /api/upload, /api/status/{id}, /api/report/{id}
	FnCompress   = "compressImage"  // CloudEvent: one image message
	FnDeadLetter = "deadLetter"     // CloudEvent: an image message that exhausted its deliveries
	FnDeliver    = "deliverWebhook" // HTTP, called by Cloud Tasks: one webhook attempt
	FnSweep      = "sweep"          // HTTP, called by Cloud Scheduler: requests that stopped progressing
)

func init() {
	functions.HTTP(FnAPI, api)
	functions.CloudEvent(FnCompress, compressImage)
	functions.CloudEvent(FnDeadLetter, deadLetter)
	functions.HTTP(FnDeliver, deliverWebhook)
	functions.HTTP(FnSweep, sweep)
}

var logger = cloudlog.New(os.Stderr)

// deps are the clients and settings shared by every call on this instance.
type deps struct {
	cfg    config.Config
	limits batch.Limits
	svc    *pipeline.Service
	store  *store.Store
	pub    *queue.Publisher
	bucket *blob.Bucket
	// private holds what only the API hands out: large reports and the
	// status page's thumbnails. It is never public.
	private *blob.Bucket
	keys    *access.Keys
	views   *viewlink.Signer
}

var loadDeps = sync.OnceValues(func() (*deps, error) {
	ctx := context.Background()
	cfg, err := config.Load()
	if err != nil {
		return nil, fmt.Errorf("config.Load: %w", err)
	}
	st, err := store.Open(ctx, cfg.Project)
	if err != nil {
		return nil, err
	}
	pub, err := queue.NewPublisher(ctx, cfg.Project, cfg.ImagesTopic)
	if err != nil {
		return nil, err
	}
	bkt, err := blob.Open(ctx, cfg.Bucket, cfg.OutputURLs, cfg.SignedURLTTL)
	if err != nil {
		return nil, err
	}
	private, err := blob.Open(ctx, cfg.PrivateBucket, "auto", cfg.SignedURLTTL)
	if err != nil {
		return nil, err
	}
	tc, err := tasks.NewClient(ctx, cfg.TasksEmulatorHost)
	if err != nil {
		return nil, err
	}
	signer, err := webhook.NewSigner(cfg.WebhookSecrets)
	if err != nil {
		return nil, err
	}
	guard := outbound.Guard{AllowLoopback: cfg.AllowLoopback, Allow: cfg.AllowAddresses, Ports: cfg.AllowedPorts}
	svc := &pipeline.Service{
		Requests:    st,
		Results:     st,
		Completions: st,
		WebhookLog:  st,
		Sweeps:      st,
		Publisher:   pub,
		Bucket:      bkt,
		Thumbs:      private,
		Fetcher: outbound.NewClient(outbound.Options{Guard: guard, Timeout: cfg.FetchTimeout, MaxRedirects: 5,
			MaxPerHost: cfg.MaxFetchesPerHost, UserAgent: outbound.UserAgent(cfg.ContactURL)}),
		Webhooks: pipeline.Webhooks{
			Enqueuer: &tasks.Enqueuer{Client: tc, Queue: cfg.QueueName(), TargetURL: cfg.WebhookDeliveryURL,
				ServiceAccount: cfg.TasksServiceAccount, Audience: cfg.TasksOIDCAudience, Deadline: cfg.WebhookTimeout + 20*time.Second},
			Signer:          signer,
			Client:          outbound.NewClient(outbound.Options{Guard: guard, Timeout: cfg.WebhookTimeout, MaxRedirects: 0, UserAgent: outbound.UserAgent(cfg.ContactURL)}).HTTPClient(),
			Timeout:         cfg.WebhookTimeout,
			MaxAttempts:     cfg.WebhookMaxAttempts,
			InlineMaxImages: cfg.WebhookInlineMaxImages,
		},
		Log:                 logger,
		MaxImageBytes:       cfg.MaxImageBytes,
		ImageLimits:         imagework.Limits{MaxPixels: cfg.MaxPixels, MaxDimension: cfg.MaxDimension},
		MaxDeliveryAttempts: cfg.MaxDeliveryAttempts,
		HookGrace:           time.Minute,
		ProcessTimeout:      90 * time.Second,
		FetchBudget:         cfg.FetchTimeout,
		SweepSettings: pipeline.SweepSettings{StallAfter: cfg.StallAfter, MaxRepublish: cfg.SweepMaxRepublish,
			MaxRequests: 500, MaxImages: 5000},
	}
	svc.Hook = pipeline.WebhookHook{S: svc}
	svc.SetConcurrency(cfg.CompressConcurrency)
	limits := batch.Limits{
		MaxBytes: cfg.MaxUploadBytes, MaxRows: cfg.MaxRows, MaxURLsPerRow: cfg.MaxURLsPerRow, MaxImages: cfg.MaxImages,
		MaxURLLength: cfg.MaxURLLength, MaxFieldLength: batch.DefaultLimits.MaxFieldLength, MaxProblemsShow: batch.DefaultLimits.MaxProblemsShow,
		Image: batch.ImageLimits{MaxBytes: cfg.MaxImageBytes, MaxPixels: cfg.MaxPixels, MaxDimension: cfg.MaxDimension},
	}
	views, err := viewlink.NewSigner(cfg.ViewLinkKeys)
	if err != nil {
		return nil, err
	}
	return &deps{cfg: cfg, limits: limits, svc: svc, store: st, pub: pub, bucket: bkt, private: private, keys: &access.Keys{FS: st.Firestore()}, views: views}, nil
})

// Usage is what this process's functions have asked of the cloud so far,
// counted at their clients: Firestore reads and writes as Firestore bills
// them, Pub/Sub messages published, objects written to the bucket.
type Usage struct {
	FirestoreReads  int64 `json:"firestoreReads"`
	FirestoreWrites int64 `json:"firestoreWrites"`
	Messages        int64 `json:"messagesPublished"`
	ObjectWrites    int64 `json:"objectWrites"`
}

// ProcessUsage reports this process's Usage (the pipeline benchmark divides
// it by images; the local host logs it when it stops).
func ProcessUsage() (Usage, error) {
	d, err := loadDeps()
	if err != nil {
		return Usage{}, err
	}
	ops := d.store.Ops()
	return Usage{FirestoreReads: ops.Reads, FirestoreWrites: ops.Writes, Messages: d.pub.Published(), ObjectWrites: d.bucket.Puts()}, nil
}

// pushTargets lists the Pub/Sub-triggered functions by name.
var pushTargets = map[string]func(context.Context, event.Event) error{
	FnCompress:   compressImage,
	FnDeadLetter: deadLetter,
}

// RegisterLocalRoutes is for a local host serving every function with
// FUNCTION_TARGET unset, where functions-framework-go serves each function
// at its exact path only. It adds the subtrees production gives for free:
// /api/… for the API, and /NAME/projects/P/topics/T for each Pub/Sub
// function, the push path from which functions-framework-go reads the
// topic. Call it once, before funcframework.Start.
func RegisterLocalRoutes(ctx context.Context) error {
	if err := funcframework.RegisterHTTPFunctionContext(ctx, "/api/", api); err != nil {
		return fmt.Errorf("funcframework.RegisterHTTPFunctionContext: %w", err)
	}
	for name, fn := range pushTargets {
		if err := funcframework.RegisterCloudEventFunctionContext(ctx, PushPath(name), fn); err != nil {
			return fmt.Errorf("funcframework.RegisterCloudEventFunctionContext: %w", err)
		}
	}
	return nil
}

// PushPath is the local path prefix for pushes to the named function.
func PushPath(name string) string { return "/" + name + "/" }
