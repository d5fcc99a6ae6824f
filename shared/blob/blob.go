// Package blob is imgpipe's Cloud Storage adapter: it writes compressed
// images and turns object names into links a person can open. The client
// honours STORAGE_EMULATOR_HOST (fake-gcs-server locally).
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/storage"

	"github.com/imgpipe/imgpipe/shared/batch"
	"github.com/imgpipe/imgpipe/shared/fault"
)

// Bucket is one output bucket.
type Bucket struct {
	gcs       *storage.Client
	name      string
	mode      string // emulator | public | signed
	emulator  string
	signedTTL time.Duration
	puts      atomic.Int64

	mu    sync.Mutex
	links map[string]signedLink // signed links kept, by object name
}

// Open connects to bucket. mode is auto, public or signed; auto links to
// the emulator when STORAGE_EMULATOR_HOST is set, else signs: public
// links work only where the bucket grants reads, which is a choice.
func Open(ctx context.Context, bucket, mode string, signedTTL time.Duration) (*Bucket, error) {
	// Reads through the JSON API, as writes go: the XML API's object paths
	// depend on the host name, which differs behind proxies and emulators.
	c, err := storage.NewClient(ctx, storage.WithJSONReads())
	if err != nil {
		return nil, fmt.Errorf("storage.NewClient: %w", err)
	}
	b := &Bucket{gcs: c, name: bucket, mode: mode, signedTTL: signedTTL}
	if host := os.Getenv("STORAGE_EMULATOR_HOST"); host != "" {
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		b.emulator = strings.TrimSuffix(host, "/")
		if mode == "auto" {
			b.mode = "emulator"
		}
	} else if mode == "auto" {
		b.mode = "signed"
	}
	return b, nil
}

// Put writes data as a JPEG object (overwriting: names are deterministic,
// so a redelivery rewrites the same bytes).
func (b *Bucket) Put(ctx context.Context, name string, data []byte) error {
	// Bounded: the client retries transient errors until its context ends.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Our names are deterministic and a rewrite stores the same bytes, so a
	// write is safe to retry: tell the client (it retries only idempotent
	// writes by default), and it rides out a short outage.
	w := b.gcs.Bucket(b.name).Object(name).Retryer(storage.WithPolicy(storage.RetryAlways)).NewWriter(ctx)
	w.ContentType = "image/jpeg"
	w.CacheControl = "public, max-age=31536000, immutable"
	w.ChunkSize = 0 // one request: our objects are small
	if _, err := w.Write(data); err != nil {
		_ = w.Close()
		return fault.Wrap(fault.Transient, batch.ReasonStorageUnavailable, err, "writing %s", name)
	}
	if err := w.Close(); err != nil {
		return fault.Wrap(fault.Transient, batch.ReasonStorageUnavailable, err, "writing %s", name)
	}
	b.puts.Add(1)
	return nil
}

// Puts is how many objects Put has written.
func (b *Bucket) Puts() int64 { return b.puts.Load() }

// Get reads an object (tests, tools).
func (b *Bucket) Get(ctx context.Context, name string) ([]byte, error) {
	r, err := b.gcs.Bucket(b.name).Object(name).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage.NewReader: %w", err)
	}
	defer r.Close()
	b2, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("storage.Reader.Read: %w", err)
	}
	return b2, nil
}

// ErrNotExist is Stat's answer for an object that is not there.
var ErrNotExist = errors.New("blob: no such object")

// Stat is an object's size and when it was last written.
func (b *Bucket) Stat(ctx context.Context, name string) (size int64, updated time.Time, err error) {
	a, err := b.gcs.Bucket(b.name).Object(name).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return 0, time.Time{}, ErrNotExist
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("storage.ObjectHandle.Attrs: %w", err)
	}
	return a.Size, a.Updated, nil
}

// URL is the link to an object that users get. A signed link is kept by
// the instance and handed out again while more than half its lifetime is
// left, so a page view or report of the same outputs does not sign each
// again (in production every signature is a call to the IAM credentials
// API). A signing failure is an error, never an empty link.
func (b *Bucket) URL(name string) (string, error) {
	switch b.mode {
	case "emulator":
		return b.emulator + "/download/storage/v1/b/" + b.name + "/o/" + url.PathEscape(name) + "?alt=media", nil
	case "signed":
		now := time.Now()
		b.mu.Lock()
		l, ok := b.links[name]
		b.mu.Unlock()
		if ok && l.expires.Sub(now) > b.signedTTL/2 {
			return l.url, nil
		}
		u, err := b.gcs.Bucket(b.name).SignedURL(name, &storage.SignedURLOptions{
			Method: "GET", Expires: now.Add(b.signedTTL), Scheme: storage.SigningSchemeV4,
		})
		if err != nil {
			return "", fmt.Errorf("storage.BucketHandle.SignedURL: %w", err)
		}
		b.mu.Lock()
		if b.links == nil || len(b.links) >= maxKeptLinks {
			b.links = map[string]signedLink{}
		}
		b.links[name] = signedLink{url: u, expires: now.Add(b.signedTTL)}
		b.mu.Unlock()
		return u, nil
	default:
		return "https://storage.googleapis.com/" + b.name + "/" + (&url.URL{Path: name}).EscapedPath(), nil
	}
}

// maxKeptLinks bounds the signed links an instance keeps (about 1 KB each).
const maxKeptLinks = 50_000

type signedLink struct {
	url     string
	expires time.Time
}

// Create returns a writer of a private object (a report, say): written
// once, read through PrivateURL.
func (b *Bucket) Create(ctx context.Context, name, contentType, disposition string) io.WriteCloser {
	w := b.gcs.Bucket(b.name).Object(name).NewWriter(ctx)
	w.ContentType = contentType
	w.ContentDisposition = disposition
	w.CacheControl = "private, max-age=0"
	return w
}

// PrivateURL is a link to an object that works for ttl whatever the
// bucket's output links are: V4-signed in production (signed by the
// functions' own account through the IAM credentials API), the emulator's
// download link locally.
func (b *Bucket) PrivateURL(name string, ttl time.Duration) (string, error) {
	if b.mode == "emulator" {
		return b.URL(name)
	}
	u, err := b.gcs.Bucket(b.name).SignedURL(name, &storage.SignedURLOptions{
		Method: "GET", Expires: time.Now().Add(ttl), Scheme: storage.SigningSchemeV4,
	})
	if err != nil {
		return "", fmt.Errorf("storage.BucketHandle.SignedURL: %w", err)
	}
	return u, nil
}

// Close releases the client.
func (b *Bucket) Close() error { return b.gcs.Close() }
