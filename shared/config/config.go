// Package config loads imgpipe's settings from the environment. Every
// variable the product reads is listed here, once, with its default; Load
// reports every problem at once rather than the first.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/shared/batch"
)

// Config is the whole product's configuration.
type Config struct {
	Project           string // GCP project
	Location          string // region of the queue
	Bucket            string // output bucket
	PrivateBucket     string // reports and status-page thumbnails; never public
	ImagesTopic       string // one message per image
	DeadLetterTopic   string // poison image messages
	WebhookQueue      string // Cloud Tasks queue for webhooks
	TasksEmulatorHost string // local only
	// OnEmulators is true when Firestore is the emulator: a local stack,
	// where the public development secrets are accepted.
	OnEmulators  bool
	PublicURL    string // base URL of the API as users see it; derived from requests when empty
	OutputURLs   string // auto | public | signed
	SignedURLTTL time.Duration

	AllowLoopback       bool // local stack only: fetch from 127.0.0.1
	AllowAddresses      []netip.Prefix
	AllowedPorts        []int
	FetchTimeout        time.Duration
	MaxFetchesPerHost   int    // per instance
	ContactURL          string // in the User-Agent of every fetch
	MaxImageBytes       int64
	MaxPixels           int64
	MaxDimension        int
	CompressConcurrency int
	MaxDeliveryAttempts int

	WebhookSecrets         []string // whsec_…: every one signs, so receivers can rotate
	ViewLinkKeys           [][]byte // sign status page links; the first signs, any verifies; server-only
	WebhookTimeout         time.Duration
	WebhookMaxAttempts     int
	WebhookMinBackoff      time.Duration
	WebhookMaxBackoff      time.Duration
	WebhookMaxDoublings    int
	WebhookDeliveryURL     string        // URL of the deliverWebhook function, Cloud Tasks' target
	TasksServiceAccount    string        // identity of Cloud Tasks' OIDC tokens, checked by deliverWebhook
	TasksOIDCAudience      string        // audience deliverWebhook requires: the delivery URL unless set
	SweepURL               string        // the sweep function's URL, the audience of Cloud Scheduler's token
	ViewLinkTTL            time.Duration // lifetime of a status page link
	StallAfter             time.Duration // a request without progress this long is swept
	SweepMaxRepublish      int           // republishings of one image before it is recorded stalled
	WebhookInlineMaxImages int

	MaxUploadBytes int64
	// ReportInlineMaxBytes is the largest report answered in the response
	// itself; a larger one is written to the bucket and answered with a
	// link (Cloud Run caps responses at 32 MiB).
	ReportInlineMaxBytes int64
	MaxRows              int
	MaxURLsPerRow        int
	MaxImages            int
	MaxURLLength         int
}

// itoa formats a default limit; the limits themselves live in batch.
func itoa[T int | int64](n T) string { return strconv.FormatInt(int64(n), 10) }

// Variable describes one environment variable.
type Variable struct {
	Name, Default, Doc string
}

// Variables lists every variable the product reads, in README order.
var Variables = []Variable{
	{"GOOGLE_CLOUD_PROJECT", "", "project ID (required)"},
	{"IMGPIPE_BUCKET", "", "bucket for compressed images (required)"},
	{"IMGPIPE_PRIVATE_BUCKET", "", "private bucket for large reports and the status page's thumbnails; empty means IMGPIPE_BUCKET followed by -private"},
	{"IMGPIPE_LOCATION", "us-central1", "region of the Cloud Tasks queue"},
	{"IMGPIPE_IMAGES_TOPIC", "imgpipe-images", "Pub/Sub topic, one message per image"},
	{"IMGPIPE_DEADLETTER_TOPIC", "imgpipe-images-dead", "topic receiving messages that failed max-attempts times"},
	{"IMGPIPE_WEBHOOK_QUEUE", "imgpipe-webhooks", "Cloud Tasks queue of webhook deliveries"},
	{"CLOUDTASKS_EMULATOR_HOST", "", "host:port of a Cloud Tasks emulator (local only)"},
	{"FIRESTORE_EMULATOR_HOST", "", "host:port of the Firestore emulator (local only; only then are the public development secrets accepted)"},
	{"IMGPIPE_PUBLIC_URL", "", "base URL of the API in links we return; from the request when empty"},
	{"IMGPIPE_OUTPUT_URLS", "auto", "output links: signed, public (storage.googleapis.com; the bucket must grant reads), or auto (emulator links under STORAGE_EMULATOR_HOST, else signed)"},
	{"IMGPIPE_SIGNED_URL_TTL", "168h", "lifetime of signed output links"},
	{"IMGPIPE_VIEW_LINK_TTL", "720h", "lifetime of the status page link (viewUrl) an upload answers"},
	{"IMGPIPE_ALLOW_LOOPBACK", "false", "allow fetching from loopback addresses: local stack only"},
	{"IMGPIPE_ALLOW_ADDRESSES", "", "CIDR prefixes fetched even though private (e.g. an internal image host); empty by default"},
	{"IMGPIPE_ALLOWED_PORTS", "80,443,8080,8443", "ports image and webhook URLs may use (allowed addresses: any)"},
	{"IMGPIPE_FETCH_TIMEOUT", "20s", "whole fetch of one image, body included"},
	{"IMGPIPE_MAX_FETCHES_PER_HOST", "4", "fetches in flight to one image host (the address dialled, however the URL spells it) from one instance; a 429 or 503 with Retry-After is waited for, at most 2 min in all per image (then host_throttled)"},
	{"IMGPIPE_CONTACT_URL", "https://github.com/imgpipe/imgpipe", "where image hosts reach the operator: fetches send User-Agent imgpipe/1 (+URL)"},
	{"IMGPIPE_MAX_IMAGE_BYTES", itoa(batch.DefaultImageLimits.MaxBytes), "largest image fetched (25 MiB)"},
	{"IMGPIPE_MAX_PIXELS", itoa(batch.DefaultImageLimits.MaxPixels), "largest image decoded, width × height"},
	{"IMGPIPE_MAX_DIMENSION", itoa(batch.DefaultImageLimits.MaxDimension), "longest side decoded"},
	{"IMGPIPE_COMPRESS_CONCURRENCY", "4", "images compressed at once per instance (Terraform sizes compressImage memory and CPU from it)"},
	{"IMGPIPE_MAX_DELIVERY_ATTEMPTS", "5", "failed attempts at one image (a fetch retried within a delivery counts, as does a failed delivery) before it is recorded failed; at most the dead-letter policy's deliveries"},
	{"IMGPIPE_WEBHOOK_SECRETS", "", "comma-separated whsec_<base64> signing secrets; each signs every delivery (rotation) (required)"},
	{"IMGPIPE_VIEW_LINK_KEYS", "", "comma-separated base64 keys of at least 32 random bytes, newest first, signing the status page links; only the functions read them, never a webhook receiver (required)"},
	{"IMGPIPE_WEBHOOK_TIMEOUT", "10s", "one webhook attempt: connect, send, answer"},
	{"IMGPIPE_WEBHOOK_MAX_ATTEMPTS", "5", "webhook attempts before FAILED (the queue's max_attempts)"},
	{"IMGPIPE_WEBHOOK_MIN_BACKOFF", "1s", "delay before the first webhook retry; doubles each retry"},
	{"IMGPIPE_WEBHOOK_MAX_BACKOFF", "300s", "longest delay between webhook attempts"},
	{"IMGPIPE_WEBHOOK_MAX_DOUBLINGS", "16", "times the webhook delay doubles before growing linearly"},
	{"IMGPIPE_WEBHOOK_DELIVERY_URL", "", "URL of the deliverWebhook function, the target of the webhook tasks (required)"},
	{"IMGPIPE_TASKS_SERVICE_ACCOUNT", "", "service account whose OIDC token Cloud Tasks sends to deliverWebhook and Cloud Scheduler to sweep; both refuse any other (required)"},
	{"IMGPIPE_TASKS_OIDC_AUDIENCE", "", "audience deliverWebhook requires of that token; empty means IMGPIPE_WEBHOOK_DELIVERY_URL"},
	{"IMGPIPE_SWEEP_URL", "", "URL of the sweep function: the audience sweep requires of Cloud Scheduler's token (required)"},
	{"IMGPIPE_STALL_AFTER", "15m", "an unfinished request without progress this long is swept: its images without result and without a delivery seen as long are republished"},
	{"IMGPIPE_SWEEP_MAX_REPUBLISH", "2", "times the sweep republishes one image before recording it failed (stalled)"},
	{"IMGPIPE_WEBHOOK_INLINE_MAX_IMAGES", "1000", "requests with more images get a webhook without products, pointing at the report"},
	{"IMGPIPE_MAX_UPLOAD_BYTES", itoa(batch.DefaultLimits.MaxBytes), "largest upload body (30 MiB; Cloud Run refuses HTTP/1 requests over 32 MiB, so at most 33554432)"},
	{"IMGPIPE_REPORT_INLINE_MAX_BYTES", "8388608", "largest CSV report sent in the response (8 MiB); a larger one is stored under reports/ in the bucket and answered with 303 See Other to a signed link (Cloud Run caps responses at 32 MiB)"},
	{"IMGPIPE_MAX_ROWS", itoa(batch.DefaultLimits.MaxRows), "products per request"},
	{"IMGPIPE_MAX_URLS_PER_ROW", itoa(batch.DefaultLimits.MaxURLsPerRow), "image URLs per product"},
	{"IMGPIPE_MAX_IMAGES", itoa(batch.DefaultLimits.MaxImages), "image URLs per request"},
	{"IMGPIPE_MAX_URL_LENGTH", itoa(batch.DefaultLimits.MaxURLLength), "characters per URL"},
}

var (
	projectRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	idRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$`)
	queueRE   = regexp.MustCompile(`^[A-Za-z0-9-]{1,100}$`)
	bucketRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)
	regionRE  = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)

	serviceAccountRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$`)
)

// CloudRunMaxRequestBytes is the largest HTTP/1 request Cloud Run (and so
// Cloud Functions gen2) passes to a function: 32 MiB, headers included.
const CloudRunMaxRequestBytes = 32 << 20

// Load reads the configuration from the process environment.
func Load() (Config, error) { return LoadFrom(os.Getenv) }

// LoadFrom reads the configuration through getenv, applying defaults, and
// returns every problem found joined in one error.
func LoadFrom(getenv func(string) string) (Config, error) {
	defaults := map[string]string{}
	for _, v := range Variables {
		defaults[v.Name] = v.Default
	}
	var errs []error
	str := func(k string) string {
		if _, ok := defaults[k]; !ok {
			panic("config: undeclared variable " + k)
		}
		if v := getenv(k); v != "" {
			return v
		}
		return defaults[k]
	}
	num := func(k string, lo, hi int64) int64 {
		n, err := strconv.ParseInt(str(k), 10, 64)
		if err != nil || n < lo || n > hi {
			errs = append(errs, fmt.Errorf("%s=%q is not a whole number from %d to %d", k, str(k), lo, hi))
		}
		return n
	}
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(str(k))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s=%q is not a positive duration such as 20s", k, str(k)))
		}
		return d
	}
	boolean := func(k string) bool {
		b, err := strconv.ParseBool(str(k))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q is not true or false", k, str(k)))
		}
		return b
	}
	prefixes := func(k string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range splitList(str(k)) {
			pf, err := netip.ParsePrefix(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s entry %q is not a CIDR prefix such as 10.1.0.0/16", k, p))
				continue
			}
			out = append(out, pf)
		}
		return out
	}
	ports := func(k string) []int {
		var out []int
		for _, p := range splitList(str(k)) {
			n, err := strconv.Atoi(p)
			if err != nil || n < 1 || n > 65535 {
				errs = append(errs, fmt.Errorf("%s entry %q is not a port", k, p))
				continue
			}
			out = append(out, n)
		}
		return out
	}
	c := Config{
		Project:                str("GOOGLE_CLOUD_PROJECT"),
		Location:               str("IMGPIPE_LOCATION"),
		Bucket:                 str("IMGPIPE_BUCKET"),
		ImagesTopic:            str("IMGPIPE_IMAGES_TOPIC"),
		DeadLetterTopic:        str("IMGPIPE_DEADLETTER_TOPIC"),
		WebhookQueue:           str("IMGPIPE_WEBHOOK_QUEUE"),
		TasksEmulatorHost:      str("CLOUDTASKS_EMULATOR_HOST"),
		OnEmulators:            str("FIRESTORE_EMULATOR_HOST") != "",
		PrivateBucket:          str("IMGPIPE_PRIVATE_BUCKET"),
		PublicURL:              str("IMGPIPE_PUBLIC_URL"),
		OutputURLs:             str("IMGPIPE_OUTPUT_URLS"),
		SignedURLTTL:           dur("IMGPIPE_SIGNED_URL_TTL"),
		ViewLinkTTL:            dur("IMGPIPE_VIEW_LINK_TTL"),
		AllowLoopback:          boolean("IMGPIPE_ALLOW_LOOPBACK"),
		FetchTimeout:           dur("IMGPIPE_FETCH_TIMEOUT"),
		MaxFetchesPerHost:      int(num("IMGPIPE_MAX_FETCHES_PER_HOST", 1, 1000)),
		ContactURL:             str("IMGPIPE_CONTACT_URL"),
		AllowAddresses:         prefixes("IMGPIPE_ALLOW_ADDRESSES"),
		AllowedPorts:           ports("IMGPIPE_ALLOWED_PORTS"),
		MaxImageBytes:          num("IMGPIPE_MAX_IMAGE_BYTES", 1024, 1<<30),
		MaxPixels:              num("IMGPIPE_MAX_PIXELS", 1, 1<<31),
		MaxDimension:           int(num("IMGPIPE_MAX_DIMENSION", 1, 65535)),
		CompressConcurrency:    int(num("IMGPIPE_COMPRESS_CONCURRENCY", 1, 1000)),
		MaxDeliveryAttempts:    int(num("IMGPIPE_MAX_DELIVERY_ATTEMPTS", 1, 100)),
		WebhookSecrets:         splitList(str("IMGPIPE_WEBHOOK_SECRETS")),
		ViewLinkKeys:           linkKeys(splitList(str("IMGPIPE_VIEW_LINK_KEYS")), &errs),
		WebhookTimeout:         dur("IMGPIPE_WEBHOOK_TIMEOUT"),
		WebhookMaxAttempts:     int(num("IMGPIPE_WEBHOOK_MAX_ATTEMPTS", 1, 100)),
		WebhookMinBackoff:      dur("IMGPIPE_WEBHOOK_MIN_BACKOFF"),
		WebhookMaxBackoff:      dur("IMGPIPE_WEBHOOK_MAX_BACKOFF"),
		WebhookMaxDoublings:    int(num("IMGPIPE_WEBHOOK_MAX_DOUBLINGS", 0, 16)),
		WebhookDeliveryURL:     str("IMGPIPE_WEBHOOK_DELIVERY_URL"),
		TasksServiceAccount:    str("IMGPIPE_TASKS_SERVICE_ACCOUNT"),
		TasksOIDCAudience:      str("IMGPIPE_TASKS_OIDC_AUDIENCE"),
		SweepURL:               str("IMGPIPE_SWEEP_URL"),
		StallAfter:             dur("IMGPIPE_STALL_AFTER"),
		SweepMaxRepublish:      int(num("IMGPIPE_SWEEP_MAX_REPUBLISH", 0, 100)),
		WebhookInlineMaxImages: int(num("IMGPIPE_WEBHOOK_INLINE_MAX_IMAGES", 0, 100000)),
		MaxUploadBytes:         num("IMGPIPE_MAX_UPLOAD_BYTES", 1024, CloudRunMaxRequestBytes),
		ReportInlineMaxBytes:   num("IMGPIPE_REPORT_INLINE_MAX_BYTES", 0, 30<<20),
		MaxRows:                int(num("IMGPIPE_MAX_ROWS", 1, 10_000_000)),
		MaxURLsPerRow:          int(num("IMGPIPE_MAX_URLS_PER_ROW", 1, 1000)),
		MaxImages:              int(num("IMGPIPE_MAX_IMAGES", 1, 10_000_000)),
		MaxURLLength:           int(num("IMGPIPE_MAX_URL_LENGTH", 16, 65536)),
	}
	if c.TasksOIDCAudience == "" {
		c.TasksOIDCAudience = c.WebhookDeliveryURL
	}
	if c.PrivateBucket == "" && c.Bucket != "" {
		c.PrivateBucket = c.Bucket + "-private"
	}
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// linkKeys decodes the view link keys, reporting any that is not base64
// of at least 32 bytes.
func linkKeys(list []string, errs *[]error) [][]byte {
	var out [][]byte
	for i, s := range list {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			k, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		}
		if err != nil || len(k) < 32 {
			*errs = append(*errs, fmt.Errorf("IMGPIPE_VIEW_LINK_KEYS entry %d is not base64 of at least 32 bytes (head -c 32 /dev/urandom | base64)", i+1))
			continue
		}
		out = append(out, k)
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c Config) validate() error {
	var errs []error
	check := func(name, val string, re *regexp.Regexp, what string) {
		switch {
		case val == "":
			errs = append(errs, fmt.Errorf("%s is required (%s)", name, what))
		case !re.MatchString(val):
			errs = append(errs, fmt.Errorf("%s=%q is not %s", name, val, what))
		}
	}
	check("GOOGLE_CLOUD_PROJECT", c.Project, projectRE, "a project ID: 6-30 lowercase letters, digits, hyphens")
	check("IMGPIPE_LOCATION", c.Location, regionRE, "a region such as us-central1")
	check("IMGPIPE_BUCKET", c.Bucket, bucketRE, "a bucket name: 3-63 lowercase letters, digits, dots, hyphens, underscores")
	check("IMGPIPE_PRIVATE_BUCKET", c.PrivateBucket, bucketRE, "a bucket name: 3-63 lowercase letters, digits, dots, hyphens, underscores")
	if c.PrivateBucket == c.Bucket && c.Bucket != "" {
		errs = append(errs, errors.New("IMGPIPE_PRIVATE_BUCKET is IMGPIPE_BUCKET: reports and thumbnails need a bucket of their own that is never public"))
	}
	check("IMGPIPE_IMAGES_TOPIC", c.ImagesTopic, idRE, "a Pub/Sub topic ID")
	check("IMGPIPE_DEADLETTER_TOPIC", c.DeadLetterTopic, idRE, "a Pub/Sub topic ID")
	check("IMGPIPE_WEBHOOK_QUEUE", c.WebhookQueue, queueRE, "a Cloud Tasks queue ID: letters, digits, hyphens")
	if len(c.WebhookSecrets) == 0 {
		errs = append(errs, errors.New("IMGPIPE_WEBHOOK_SECRETS is required (whsec_ followed by base64 of at least 24 random bytes)"))
	}
	for i, sec := range c.WebhookSecrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if !strings.HasPrefix(sec, "whsec_") || err != nil || len(key) < 24 {
			errs = append(errs, fmt.Errorf("IMGPIPE_WEBHOOK_SECRETS entry %d is not whsec_ followed by base64 of at least 24 bytes", i+1))
		}
	}
	if len(c.ViewLinkKeys) == 0 {
		errs = append(errs, errors.New("IMGPIPE_VIEW_LINK_KEYS is required (base64 of at least 32 random bytes; make deploy generates it)"))
	}
	if !c.OnEmulators {
		for _, sec := range c.WebhookSecrets {
			if sec == DevWebhookSecret {
				errs = append(errs, errors.New("IMGPIPE_WEBHOOK_SECRETS holds the public development secret, which anyone can read in imgpipe's source: set a secret of your own (make deploy generates one: whsec_ followed by base64 of 32 random bytes)"))
			}
		}
		for _, k := range c.ViewLinkKeys {
			if base64.StdEncoding.EncodeToString(k) == DevViewLinkKey {
				errs = append(errs, errors.New("IMGPIPE_VIEW_LINK_KEYS holds the public development key, with which anyone could open any status page: set a key of your own (head -c 32 /dev/urandom | base64)"))
			}
		}
	}
	if u, err := url.Parse(c.WebhookDeliveryURL); c.WebhookDeliveryURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("IMGPIPE_WEBHOOK_DELIVERY_URL=%q is not an absolute http(s) URL (the deliverWebhook function)", c.WebhookDeliveryURL))
	}
	if u, err := url.Parse(c.SweepURL); c.SweepURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("IMGPIPE_SWEEP_URL=%q is not an absolute http(s) URL (the sweep function)", c.SweepURL))
	}
	if c.StallAfter <= 0 {
		errs = append(errs, fmt.Errorf("IMGPIPE_STALL_AFTER=%s is not a positive duration", c.StallAfter))
	}
	if !serviceAccountRE.MatchString(c.TasksServiceAccount) {
		errs = append(errs, fmt.Errorf("IMGPIPE_TASKS_SERVICE_ACCOUNT=%q is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)", c.TasksServiceAccount))
	}
	if c.WebhookMinBackoff > c.WebhookMaxBackoff {
		errs = append(errs, errors.New("IMGPIPE_WEBHOOK_MIN_BACKOFF exceeds IMGPIPE_WEBHOOK_MAX_BACKOFF"))
	}
	switch c.OutputURLs {
	case "auto", "public", "signed":
	default:
		errs = append(errs, fmt.Errorf("IMGPIPE_OUTPUT_URLS=%q is not auto, public or signed", c.OutputURLs))
	}
	return errors.Join(errs...)
}

// TopicName is the full resource name of the images topic.
func (c Config) TopicName() string { return "projects/" + c.Project + "/topics/" + c.ImagesTopic }

// DeadLetterTopicName is the full resource name of the dead-letter topic.
func (c Config) DeadLetterTopicName() string {
	return "projects/" + c.Project + "/topics/" + c.DeadLetterTopic
}

// QueueName is the full resource name of the webhook queue.
func (c Config) QueueName() string {
	return "projects/" + c.Project + "/locations/" + c.Location + "/queues/" + c.WebhookQueue
}

// Names returns every variable name, sorted (for cross-checks with Terraform).
func Names() []string {
	out := make([]string, len(Variables))
	for i, v := range Variables {
		out[i] = v.Name
	}
	sort.Strings(out)
	return out
}

// DevWebhookSecret signs webhooks on local stacks (make dev, demo, test).
// Never deploy it: Terraform takes the secret from a variable.
const DevWebhookSecret = "whsec_aW1ncGlwZS1sb2NhbC1kZXZlbG9wbWVudC1zZWNyZXQ="

// DevViewLinkKey signs status page links on local stacks. Like
// DevWebhookSecret it is public, and refused outside the emulators.
const DevViewLinkKey = "aW1ncGlwZS1sb2NhbC1kZXZlbG9wbWVudC12aWV3LWxpbmsta2V5"
