// Package functions is imgpipe's edge: every Cloud Function entry point,
// registered with functions-framework-go in init(). Handlers decode the
// request, call shared/ and map errors; they hold no business logic.
//
// Every function ships in every deployment (the buildpack builds the root
// package, which imports this one), so cloud clients are created lazily, once
// per instance, by the first call that needs them.
package functions

import (
	"context"
	"fmt"
	"sync"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/imgpipe/imgpipe/shared/config"
	"github.com/imgpipe/imgpipe/shared/store"
)

// deps holds the clients shared by every invocation on this instance.
type deps struct {
	cfg   config.Config
	store *store.Store
}

var loadDeps = sync.OnceValues(func() (*deps, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, fmt.Errorf("config.Load: %w", err)
	}
	st, err := store.Open(context.Background(), cfg.Project)
	if err != nil {
		return nil, err
	}
	return &deps{cfg: cfg, store: st}, nil
})

// pushTargets lists the Pub/Sub-triggered functions by name.
var pushTargets = map[string]func(context.Context, event.Event) error{}

// ServePushRoutes registers every Pub/Sub-triggered function a second time at
// /NAME/ (a subtree), so that a local push subscription can use the endpoint
// /NAME/projects/P/topics/T: functions-framework-go reads the topic of a raw
// push from that path. In production Eventarc sends a CloudEvent and this is
// not needed. Call it once, before funcframework.Start.
func ServePushRoutes(ctx context.Context) error {
	for name, fn := range pushTargets {
		if err := funcframework.RegisterCloudEventFunctionContext(ctx, PushPath(name), fn); err != nil {
			return fmt.Errorf("funcframework.RegisterCloudEventFunctionContext: %w", err)
		}
	}
	return nil
}

// PushPath is the local path prefix for pushes to the named function.
func PushPath(name string) string { return "/" + name + "/" }
