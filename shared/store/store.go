// Package store is imgpipe's Firestore adapter: requests, images and their
// counters live here. The client honours FIRESTORE_EMULATOR_HOST.
package store

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/firestore"
)

// Store wraps one Firestore client; create it once per instance.
type Store struct {
	fs *firestore.Client
}

// Open connects to the project's default database.
func Open(ctx context.Context, project string) (*Store, error) {
	fs, err := firestore.NewClient(ctx, project)
	if err != nil {
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	return &Store{fs: fs}, nil
}

// Close releases the client.
func (s *Store) Close() error { return s.fs.Close() }

// Probe is what a wiring probe function saw: proof that a trigger reached it.
type Probe struct {
	ID         string            `firestore:"id"`
	Source     string            `firestore:"source"`
	Data       string            `firestore:"data"`
	Attributes map[string]string `firestore:"attributes,omitempty"`
	Headers    map[string]string `firestore:"headers,omitempty"`
	ReceivedAt time.Time         `firestore:"receivedAt"`
}

const probes = "probes"

// RecordProbe stores p under its ID (a redelivery overwrites it).
func (s *Store) RecordProbe(ctx context.Context, p Probe) error {
	if _, err := s.fs.Collection(probes).Doc(p.ID).Set(ctx, p); err != nil {
		return fmt.Errorf("firestore.Set: %w", err)
	}
	return nil
}

// Probe reads a recorded probe; found is false when there is none yet.
func (s *Store) Probe(ctx context.Context, id string) (Probe, bool, error) {
	return getOptional[Probe](ctx, s.fs.Collection(probes).Doc(id), "probe "+id)
}

// Firestore exposes the client for packages that keep their own
// collections (access).
func (s *Store) Firestore() *firestore.Client { return s.fs }
