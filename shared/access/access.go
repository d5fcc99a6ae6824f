// Package access is who may call the API and how much: API keys (stored
// only as SHA-256 hashes in Firestore), a per-key request rate shared by
// every function instance (a Firestore counter per key and minute). The
// per-key cap on images in flight is counted from the key's unfinished
// requests (store.InFlightImages).
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/imgpipe/imgpipe/shared/fault"
)

const (
	colKeys  = "apiKeys"
	colRates = "apiRates"
	// KeyPrefix starts every key, so leaked keys are easy to scan for.
	KeyPrefix = "imgpipe_"
)

// Key is an API key's record; its ID is the hex SHA-256 of the secret.
type Key struct {
	ID            string    `firestore:"-"`
	Name          string    `firestore:"name"`
	CreatedAt     time.Time `firestore:"createdAt"`
	Revoked       bool      `firestore:"revoked"`
	RatePerMinute int       `firestore:"ratePerMinute"`
	MaxInFlight   int       `firestore:"maxInFlightImages"`
}

// Keys manages keys and limits in Firestore.
type Keys struct {
	FS *firestore.Client
	// Now is the clock (tests).
	Now func() time.Time
}

// Hash is a key's ID.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Create makes a key and returns its secret, shown once.
func (k *Keys) Create(ctx context.Context, name string, ratePerMinute, maxInFlight int) (secret string, key Key, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", Key{}, err
	}
	secret = KeyPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	key = Key{ID: Hash(secret), Name: name, CreatedAt: time.Now().UTC(), RatePerMinute: ratePerMinute, MaxInFlight: maxInFlight}
	if _, err := k.FS.Collection(colKeys).Doc(key.ID).Create(ctx, key); err != nil {
		return "", Key{}, fmt.Errorf("firestore.Create: %w", err)
	}
	return secret, key, nil
}

// Revoke disables a key by ID (or by an unambiguous ID prefix of ≥ 8).
func (k *Keys) Revoke(ctx context.Context, id string) error {
	full, err := k.resolve(ctx, id)
	if err != nil {
		return err
	}
	_, err = k.FS.Collection(colKeys).Doc(full).Update(ctx, []firestore.Update{{Path: "revoked", Value: true}})
	return err
}

func (k *Keys) resolve(ctx context.Context, id string) (string, error) {
	if len(id) == 64 {
		return id, nil
	}
	if len(id) < 8 {
		return "", fmt.Errorf("key ID prefix %q: give at least 8 characters", id)
	}
	keys, err := k.List(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, key := range keys {
		if strings.HasPrefix(key.ID, id) {
			found = append(found, key.ID)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("key ID prefix %q matches %d keys", id, len(found))
	}
	return found[0], nil
}

// List returns every key (hashes and metadata, never secrets).
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	it := k.FS.Collection(colKeys).Documents(ctx)
	var out []Key
	for {
		d, err := it.Next()
		if err == iterator.Done {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var key Key
		if err := d.DataTo(&key); err != nil {
			return nil, err
		}
		key.ID = d.Ref.ID
		out = append(out, key)
	}
}

// SecretFrom reads the key from "Authorization: Bearer …" or "X-API-Key".
func SecretFrom(r *http.Request) string {
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return strings.TrimSpace(r.Header.Get("X-API-Key"))
}

// Authenticate returns the key of a request, or an unauthenticated error.
func (k *Keys) Authenticate(ctx context.Context, secret string) (Key, error) {
	if secret == "" {
		return Key{}, fault.New(fault.Unauthenticated, "", "an API key is required: Authorization: Bearer KEY, or X-API-Key: KEY")
	}
	id := Hash(secret)
	snap, err := k.FS.Collection(colKeys).Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Key{}, fault.New(fault.Unauthenticated, "", "unknown API key")
	}
	if err != nil {
		return Key{}, fault.Wrap(fault.Transient, "", err, "checking the API key")
	}
	var key Key
	if err := snap.DataTo(&key); err != nil {
		return Key{}, fmt.Errorf("firestore.DataTo: %w", err)
	}
	key.ID = id
	if key.Revoked {
		return Key{}, fault.New(fault.Unauthenticated, "", "this API key was revoked")
	}
	return key, nil
}

// Allow counts one call of key in the current minute, shared by every
// instance, and refuses it past the key's rate with the seconds to wait.
func (k *Keys) Allow(ctx context.Context, key Key) error {
	if key.RatePerMinute <= 0 {
		return nil
	}
	now := k.now()
	minute := now.Unix() / 60
	doc := k.FS.Collection(colRates).Doc(key.ID + "-" + strconv.FormatInt(minute, 10))
	if _, err := doc.Set(ctx, map[string]any{"n": firestore.Increment(1), "expireAt": now.Add(2 * time.Minute)}, firestore.MergeAll); err != nil {
		return fault.Wrap(fault.Transient, "", err, "counting the request")
	}
	snap, err := doc.Get(ctx)
	if err != nil {
		return fault.Wrap(fault.Transient, "", err, "counting the request")
	}
	n, _ := snap.DataAt("n")
	if c, _ := n.(int64); int(c) > key.RatePerMinute {
		wait := 60 - now.Unix()%60
		return &fault.Error{Kind: fault.RateLimited, Message: fmt.Sprintf("more than %d requests this minute for this API key; retry in %d s", key.RatePerMinute, wait),
			RetryAfter: time.Duration(wait) * time.Second}
	}
	return nil
}

func (k *Keys) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}
