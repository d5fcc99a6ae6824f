package store

import (
	"context"
	"fmt"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

func (s *Store) webhookState(id string) *firestore.DocumentRef {
	return s.req(id).Collection("webhook").Doc("state")
}

// GetWebhookState reads the state; found is false before the first enqueue.
func (s *Store) GetWebhookState(ctx context.Context, id string) (batch.WebhookState, bool, error) {
	return getOptional[batch.WebhookState](ctx, s.webhookState(id), "webhook of "+id)
}

// StartWebhook creates the state as DELIVERING, before the first task is
// enqueued; when it exists already (a repeated completion hook) it is left
// alone, so a DELIVERED webhook never turns back.
func (s *Store) StartWebhook(ctx context.Context, id string) error {
	_, err := s.webhookState(id).Create(ctx, batch.WebhookState{Status: batch.WebhookDelivering})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fault.Wrap(fault.Transient, "store_unavailable", err, "starting webhook of %s", id)
	}
	return nil
}

// RecordWebhookAttempt stores one attempt under key and updates the state,
// atomically and once per key: a duplicate dispatch of the same attempt
// changes nothing (first=false).
func (s *Store) RecordWebhookAttempt(ctx context.Context, id, key string, a batch.WebhookAttempt) (first bool, err error) {
	attRef := s.req(id).Collection("webhookAttempts").Doc(key)
	err = s.fs.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		if err := tx.Create(attRef, a); err != nil {
			return err
		}
		return tx.Set(s.webhookState(id), map[string]any{
			"status": a.Outcome, "attempts": firestore.Increment(1), "lastAttemptAt": a.At,
			"lastStatusCode": a.StatusCode, "lastError": a.Error,
		}, firestore.MergeAll)
	})
	switch status.Code(err) {
	case codes.OK:
		return true, nil
	case codes.AlreadyExists:
		return false, nil
	default:
		return false, fault.Wrap(fault.Transient, "store_unavailable", err, "recording webhook attempt of %s", id)
	}
}

// WebhookAttempts lists the attempts in time order.
func (s *Store) WebhookAttempts(ctx context.Context, id string) ([]batch.WebhookAttempt, error) {
	docs, err := s.req(id).Collection("webhookAttempts").OrderBy("at", firestore.Asc).Documents(ctx).GetAll()
	if err != nil {
		return nil, fault.Wrap(fault.Transient, "store_unavailable", err, "listing webhook attempts of %s", id)
	}
	out := make([]batch.WebhookAttempt, len(docs))
	for i, d := range docs {
		if err := d.DataTo(&out[i]); err != nil {
			return nil, fmt.Errorf("firestore.DataTo: %w", err)
		}
	}
	return out, nil
}

// NextRedelivery counts a redelivery and returns its number (1, 2, …).
func (s *Store) NextRedelivery(ctx context.Context, id string) (int, error) {
	ref := s.webhookState(id)
	if _, err := ref.Set(ctx, map[string]any{"redeliveries": firestore.Increment(1), "status": batch.WebhookDelivering}, firestore.MergeAll); err != nil {
		return 0, fault.Wrap(fault.Transient, "store_unavailable", err, "counting redeliveries of %s", id)
	}
	w, _, err := s.GetWebhookState(ctx, id)
	return w.Redeliveries, err
}
