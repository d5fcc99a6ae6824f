package access_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/imgpipe/imgpipe/shared/access"
	"github.com/imgpipe/imgpipe/shared/emulatortest"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// keys connects to the Firestore emulator; a test that calls it needs one.
func keys(t *testing.T) *access.Keys {
	t.Helper()
	emulatortest.Need(t, emulatortest.Missing("GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST"))
	fs, err := firestore.NewClient(context.Background(), os.Getenv("GOOGLE_CLOUD_PROJECT"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return &access.Keys{FS: fs}
}

// randomKey is a well-formed key that no one created.
func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return access.KeyPrefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// Guessing keys costs no unbounded reads: a secret not shaped like a key is
// refused without a lookup, an unknown key is looked up once, and one
// address may look up MissesPerMinute unknown keys a minute before it gets
// 429s, while a real key from another address still works.
func TestGuessingKeysIsBounded(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	secret, _, err := k.Create(ctx, "real", 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, junk := range []string{"imgpipe_unknown", "nope", strings.Repeat("x", 1<<20), "imgpipe_" + strings.Repeat("A", 52)} {
		if _, err := k.Authenticate(ctx, junk, "198.51.100.7"); fault.KindOf(err) != fault.Unauthenticated {
			t.Errorf("%.20q: %v, want unauthenticated", junk, err)
		}
	}
	if n := k.Lookups(); n != 0 {
		t.Errorf("malformed secrets made %d lookups, want 0", n)
	}
	same := randomKey()
	for range 5 {
		if _, err := k.Authenticate(ctx, same, "198.51.100.7"); fault.KindOf(err) != fault.Unauthenticated {
			t.Errorf("an unknown key: %v", err)
		}
	}
	if n := k.Lookups(); n != 1 {
		t.Errorf("one unknown key tried 5 times made %d lookups, want 1", n)
	}
	limited := 0
	for range 100 {
		_, err := k.Authenticate(ctx, randomKey(), "198.51.100.7")
		if fault.KindOf(err) == fault.RateLimited {
			limited++
		}
	}
	if n := k.Lookups(); n > access.MissesPerMinute+1 {
		t.Errorf("100 unknown keys from one address made %d lookups, want at most %d", n, access.MissesPerMinute+1)
	}
	if limited < 100-access.MissesPerMinute {
		t.Errorf("%d of 100 guesses were told to wait", limited)
	}
	if _, err := k.Authenticate(ctx, secret, "203.0.113.9"); err != nil {
		t.Errorf("the real key from another address: %v", err)
	}
	// Guesses from a shared address (a NAT, a proxy) do not lock out a key
	// already seen to be valid.
	if _, err := k.Authenticate(ctx, secret, "198.51.100.7"); err != nil {
		t.Errorf("the real key from the guessing address: %v", err)
	}
	// An IPv6 host's other addresses in its /64 share its count.
	for i := range access.MissesPerMinute {
		k.Authenticate(ctx, randomKey(), "2001:db8:1:2::"+strconv.Itoa(i+1))
	}
	if _, err := k.Authenticate(ctx, randomKey(), "2001:db8:1:2::ffff"); fault.KindOf(err) != fault.RateLimited {
		t.Errorf("a guess from the same /64: %v, want rate limited", err)
	}
	// A new minute lets the address try again.
	k.Now = func() time.Time { return time.Now().Add(time.Minute) }
	if _, err := k.Authenticate(ctx, randomKey(), "198.51.100.7"); fault.KindOf(err) != fault.Unauthenticated {
		t.Errorf("a guess in the next minute: %v, want unauthenticated", err)
	}
}

// Active answers a revoked key as not found.
func TestActive(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	_, key, err := k.Create(ctx, "active", 100, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.Active(ctx, key.ID); err != nil || got.RatePerMinute != 100 {
		t.Fatalf("Active: %+v %v", got, err)
	}
	if err := k.Revoke(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	k.Now = func() time.Time { return time.Now().Add(time.Minute) } // past the instance's memory
	if _, err := k.Active(ctx, key.ID); fault.KindOf(err) != fault.NotFound {
		t.Errorf("a revoked key: %v, want not found", err)
	}
	if _, err := k.Active(ctx, strings.Repeat("0", 64)); fault.KindOf(err) != fault.NotFound {
		t.Errorf("no such key: %v, want not found", err)
	}
}

func TestClientAddress(t *testing.T) {
	for _, tc := range []struct{ remote, xff, want string }{
		{"10.0.0.1:5555", "", "10.0.0.1"},
		{"10.0.0.1:5555", "203.0.113.9", "203.0.113.9"},
		{"10.0.0.1:5555", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"[::1]:5555", "", "[::1]"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := access.ClientAddress(r); got != tc.want {
			t.Errorf("%s / %q: %q, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}

// A key's status page calls have a budget of their own at the key's rate:
// past it views are refused, and the key's own calls are not.
func TestViewsHaveTheirOwnBudget(t *testing.T) {
	k := keys(t)
	ctx := context.Background()
	_, key, err := k.Create(ctx, "views", 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	k.Now = func() time.Time { return at }
	for i := range 5 {
		if err := k.AllowView(ctx, key); err != nil {
			t.Fatalf("view %d: %v", i+1, err)
		}
	}
	if err := k.AllowView(ctx, key); fault.KindOf(err) != fault.RateLimited {
		t.Errorf("the sixth view this minute: %v, want rate limited", err)
	}
	if err := k.Allow(ctx, key); err != nil {
		t.Errorf("the key's own call after its views: %v", err)
	}
}
