// Package store is imgpipe's Firestore adapter: requests, images and their
// counters live here. The client honours FIRESTORE_EMULATOR_HOST.
package store

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"
)

// Store wraps one Firestore client; create it once per instance.
type Store struct {
	fs  *firestore.Client
	ops *opCounter
}

// Open connects to the project's default database.
func Open(ctx context.Context, project string) (*Store, error) {
	ops := &opCounter{}
	opts, err := ops.options()
	if err != nil {
		return nil, err
	}
	fs, err := firestore.NewClient(ctx, project, opts...)
	if err != nil {
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &Store{fs: fs, ops: ops}, nil
}

// Ops returns the Firestore operations this Store's client has made so
// far (its every user: the pipeline, and the access keys on the same
// client).
func (s *Store) Ops() Ops { return s.ops.snapshot() }

// Close releases the client.
func (s *Store) Close() error { return s.fs.Close() }

// Firestore exposes the client for packages that keep their own
// collections (access).
func (s *Store) Firestore() *firestore.Client { return s.fs }
