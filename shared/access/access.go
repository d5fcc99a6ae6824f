// Package access is who may call the API and how much: API keys (stored
// only as SHA-256 hashes in Firestore), a per-key request rate shared by
// every function instance (a Firestore counter per key and minute). The
// per-key cap on images in flight is counted from the key's unfinished
// requests (store.InFlightImages).
//
// Guessing costs the guesser, not the database: a secret that is not
// shaped like a key is refused without a read, a key found unknown is
// remembered for a while by the instance, and each caller address may
// look up only a few unknown keys a minute before it is told to wait.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
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

	mu      sync.Mutex
	unknown map[string]time.Time   // key IDs found unknown, until when remembered
	known   map[string]time.Time   // key IDs found valid, until when remembered: never limited by address
	misses  map[string]*missWindow // per caller address: unknown keys looked up this minute
	active  map[string]activeEntry // Active's answers, briefly
	lookups int64                  // key documents read, for tests
}

// Bounds of the guessing defence. A caller address (an IPv6 /64) may look
// up MissesPerMinute unknown keys a minute; an unknown key is not looked
// up again for rememberUnknown, and a valid one is not limited by its
// address for as long. Each map is cleared when it grows past
// maxTracked entries, so memory stays bounded under any flood.
const (
	MissesPerMinute = 10
	rememberUnknown = 10 * time.Minute
	maxTracked      = 10_000
	activeFor       = 5 * time.Second
)

type missWindow struct {
	minute int64
	n      int
}

type activeEntry struct {
	key Key
	err error
	at  time.Time
}

// keyShape is the length of a key: the prefix and 52 base32 characters.
var keyShape = len(KeyPrefix) + 52

// wellFormed reports whether secret could be a key Create made.
func wellFormed(secret string) bool {
	rest, ok := strings.CutPrefix(secret, KeyPrefix)
	return ok && len(secret) == keyShape && strings.Trim(rest, "abcdefghijklmnopqrstuvwxyz234567") == ""
}

// Lookups is how many key documents this Keys has read.
func (k *Keys) Lookups() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lookups
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

// ClientAddress is the address a request came from, as the guessing
// defence counts it: the last X-Forwarded-For entry, which Cloud Run's
// front end appends (a client can only prepend), else the connection's.
func ClientAddress(r *http.Request) string {
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		last := xff[len(xff)-1]
		if i := strings.LastIndexByte(last, ','); i >= 0 {
			last = last[i+1:]
		}
		if last = strings.TrimSpace(last); last != "" {
			return last
		}
	}
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return r.RemoteAddr[:i]
	}
	return r.RemoteAddr
}

// unknownKey is the answer to a secret that is no key.
func unknownKey() error {
	return fault.New(fault.Unauthenticated, "", "unknown API key (a key is imgpipe_ followed by 52 letters and digits, as imgpipe-keys create printed it)")
}

// Authenticate returns the key of a request from caller address addr, or
// an unauthenticated error. Only well-formed secrets are looked up; an
// address past MissesPerMinute unknown keys this minute is answered 429
// without a lookup.
func (k *Keys) Authenticate(ctx context.Context, secret, addr string) (Key, error) {
	if secret == "" {
		return Key{}, fault.New(fault.Unauthenticated, "", "an API key is required: Authorization: Bearer KEY, or X-API-Key: KEY")
	}
	if !wellFormed(secret) {
		return Key{}, unknownKey()
	}
	id := Hash(secret)
	if err := k.mayLookUp(id, addr); err != nil {
		return Key{}, err
	}
	snap, err := k.FS.Collection(colKeys).Doc(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		k.missed(id, addr)
		return Key{}, unknownKey()
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
	k.found(id)
	return key, nil
}

// addressGroup is what the guessing defence counts an address as: an
// IPv4 address alone, an IPv6 address by its /64 (one host usually holds
// a whole /64).
func addressGroup(addr string) string {
	a, err := netip.ParseAddr(strings.Trim(addr, "[]"))
	if err != nil {
		return addr
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// mayLookUp refuses, without a read, a key this instance found unknown
// lately and an address that looked up too many unknown keys this minute.
// A key this instance found valid lately is never refused for its
// address: guesses from a shared address do not lock its callers out.
func (k *Keys) mayLookUp(id, addr string) error {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if until, ok := k.unknown[id]; ok && now.Before(until) {
		return unknownKey()
	}
	if until, ok := k.known[id]; ok && now.Before(until) {
		k.lookups++
		return nil
	}
	if w := k.misses[addressGroup(addr)]; w != nil && w.minute == now.Unix()/60 && w.n >= MissesPerMinute {
		wait := 60 - now.Unix()%60
		return &fault.Error{Kind: fault.RateLimited, RetryAfter: time.Duration(wait) * time.Second,
			Message: fmt.Sprintf("more than %d unknown API keys from this address this minute; retry in %d s", MissesPerMinute, wait)}
	}
	k.lookups++
	return nil
}

// missed remembers an unknown key and counts it against addr.
func (k *Keys) missed(id, addr string) {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.unknown == nil || len(k.unknown) >= maxTracked {
		k.unknown = map[string]time.Time{}
	}
	k.unknown[id] = now.Add(rememberUnknown)
	if k.misses == nil || len(k.misses) >= maxTracked {
		k.misses = map[string]*missWindow{}
	}
	w := k.misses[addressGroup(addr)]
	if w == nil || w.minute != now.Unix()/60 {
		w = &missWindow{minute: now.Unix() / 60}
		k.misses[addressGroup(addr)] = w
	}
	w.n++
}

// found remembers a valid key.
func (k *Keys) found(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.known == nil || len(k.known) >= maxTracked {
		k.known = map[string]time.Time{}
	}
	k.known[id] = k.now().Add(rememberUnknown)
}

// Active checks that the key with ID id exists and is not revoked. Its
// answer is kept by the instance for a few seconds (a status page and its
// thumbnails ask together), so a revocation reaches every instance within
// that time.
func (k *Keys) Active(ctx context.Context, id string) (Key, error) {
	now := k.now()
	k.mu.Lock()
	if e, ok := k.active[id]; ok && now.Sub(e.at) < activeFor {
		k.mu.Unlock()
		return e.key, e.err
	}
	k.lookups++
	k.mu.Unlock()
	var key Key
	snap, err := k.FS.Collection(colKeys).Doc(id).Get(ctx)
	switch {
	case status.Code(err) == codes.NotFound:
		err = fault.New(fault.NotFound, "", "no such key")
	case err != nil:
		return Key{}, fault.Wrap(fault.Transient, "", err, "checking the API key")
	default:
		if err = snap.DataTo(&key); err != nil {
			return Key{}, fmt.Errorf("firestore.DataTo: %w", err)
		}
		key.ID = id
		if key.Revoked {
			key, err = Key{}, fault.New(fault.NotFound, "", "the key was revoked")
		}
	}
	k.mu.Lock()
	if k.active == nil || len(k.active) >= maxTracked {
		k.active = map[string]activeEntry{}
	}
	k.active[id] = activeEntry{key: key, err: err, at: now}
	k.mu.Unlock()
	return key, err
}

// Allow counts one call of key in the current minute, shared by every
// instance, and refuses it past the key's rate with the seconds to wait.
func (k *Keys) Allow(ctx context.Context, key Key) error { return k.allow(ctx, key, "") }

// AllowView counts one status page call of key's requests in the current
// minute, at the key's rate but in a budget of its own: the holders of
// its links cannot use up the key's own calls.
func (k *Keys) AllowView(ctx context.Context, key Key) error { return k.allow(ctx, key, "view-") }

func (k *Keys) allow(ctx context.Context, key Key, budget string) error {
	if key.RatePerMinute <= 0 {
		return nil
	}
	now := k.now()
	minute := now.Unix() / 60
	doc := k.FS.Collection(colRates).Doc(key.ID + "-" + budget + strconv.FormatInt(minute, 10))
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
