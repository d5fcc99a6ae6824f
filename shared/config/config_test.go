package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"GOOGLE_CLOUD_PROJECT": "imgpipe-local", "IMGPIPE_BUCKET": "imgpipe-local-images",
		"FIRESTORE_EMULATOR_HOST": "127.0.0.1:8086", "IMGPIPE_VIEW_LINK_KEYS": DevViewLinkKey,
		"IMGPIPE_WEBHOOK_SECRETS": DevWebhookSecret, "IMGPIPE_WEBHOOK_DELIVERY_URL": "http://127.0.0.1:8080/deliverWebhook",
		"IMGPIPE_SWEEP_URL": "http://127.0.0.1:8080/sweep", "IMGPIPE_TASKS_SERVICE_ACCOUNT": "imgpipe-tasks@imgpipe-local.iam.gserviceaccount.com"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.PrivateBucket != "imgpipe-local-images-private" {
		t.Errorf("the private bucket defaults to %q", c.PrivateBucket)
	}
	if c.TasksOIDCAudience != c.WebhookDeliveryURL {
		t.Errorf("the OIDC audience defaults to %q, want the delivery URL", c.TasksOIDCAudience)
	}
	if c.MaxUploadBytes > CloudRunMaxRequestBytes {
		t.Errorf("the upload limit %d is above what Cloud Run accepts (%d)", c.MaxUploadBytes, CloudRunMaxRequestBytes)
	}
	if c.Location != "us-central1" || c.ImagesTopic != "imgpipe-images" || c.WebhookQueue != "imgpipe-webhooks" || c.TasksEmulatorHost != "" {
		t.Errorf("defaults: %+v", c)
	}
	if c.AllowLoopback || c.FetchTimeout != 20*time.Second || c.MaxImageBytes != 25<<20 || c.CompressConcurrency != 4 || c.MaxRows != 100000 {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.QueueName(); got != "projects/imgpipe-local/locations/us-central1/queues/imgpipe-webhooks" {
		t.Errorf("QueueName = %s", got)
	}
	if got := c.TopicName(); got != "projects/imgpipe-local/topics/imgpipe-images" {
		t.Errorf("TopicName = %s", got)
	}
}

func TestLoadJoinsEveryProblem(t *testing.T) {
	_, err := LoadFrom(env(map[string]string{
		"IMGPIPE_LOCATION": "mars", "IMGPIPE_WEBHOOK_QUEUE": "has space", "IMGPIPE_FETCH_TIMEOUT": "soon",
		"IMGPIPE_MAX_ROWS": "0", "IMGPIPE_ALLOW_LOOPBACK": "maybe", "IMGPIPE_OUTPUT_URLS": "ftp",
		"IMGPIPE_WEBHOOK_SECRETS": "whsec_c2hvcnQ=, nope",
	}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"GOOGLE_CLOUD_PROJECT is required",
		"IMGPIPE_BUCKET is required",
		`IMGPIPE_LOCATION="mars" is not a region`,
		`IMGPIPE_WEBHOOK_QUEUE="has space" is not a Cloud Tasks queue ID`,
		`IMGPIPE_FETCH_TIMEOUT="soon" is not a positive duration`,
		`IMGPIPE_MAX_ROWS="0" is not a whole number from 1 to 10000000`,
		`IMGPIPE_ALLOW_LOOPBACK="maybe" is not true or false`,
		`IMGPIPE_OUTPUT_URLS="ftp" is not auto, public or signed`,
		"IMGPIPE_WEBHOOK_SECRETS entry 1 is not whsec_",
		"IMGPIPE_WEBHOOK_SECRETS entry 2 is not whsec_",
		`IMGPIPE_WEBHOOK_DELIVERY_URL="" is not an absolute http(s) URL`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// The development secret and link key are public: outside the emulators
// the functions refuse to start with them, and say what to set instead.
func TestDevelopmentSecretsRefusedOutsideEmulators(t *testing.T) {
	base := map[string]string{"GOOGLE_CLOUD_PROJECT": "acme-prod", "IMGPIPE_BUCKET": "acme-prod-imgpipe-images",
		"IMGPIPE_WEBHOOK_DELIVERY_URL": "https://deliver.example/deliverWebhook", "IMGPIPE_SWEEP_URL": "https://sweep.example/sweep",
		"IMGPIPE_TASKS_SERVICE_ACCOUNT": "imgpipe-pusher@acme-prod.iam.gserviceaccount.com",
		"IMGPIPE_WEBHOOK_SECRETS":       "whsec_" + strings.Repeat("A", 43) + "=", "IMGPIPE_VIEW_LINK_KEYS": strings.Repeat("B", 43) + "="}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	if _, err := LoadFrom(env(base)); err != nil {
		t.Fatalf("own secrets refused: %v", err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{with("IMGPIPE_WEBHOOK_SECRETS", DevWebhookSecret), "IMGPIPE_WEBHOOK_SECRETS holds the public development secret"},
		{with("IMGPIPE_WEBHOOK_SECRETS", base["IMGPIPE_WEBHOOK_SECRETS"]+","+DevWebhookSecret), "IMGPIPE_WEBHOOK_SECRETS holds the public development secret"},
		{with("IMGPIPE_VIEW_LINK_KEYS", DevViewLinkKey), "IMGPIPE_VIEW_LINK_KEYS holds the public development key"},
		{with("IMGPIPE_VIEW_LINK_KEYS", ""), "IMGPIPE_VIEW_LINK_KEYS is required"},
		{with("IMGPIPE_VIEW_LINK_KEYS", "c2hvcnQ="), "IMGPIPE_VIEW_LINK_KEYS entry 1 is not base64 of at least 32 bytes"},
		{with("IMGPIPE_PRIVATE_BUCKET", "acme-prod-imgpipe-images"), "IMGPIPE_PRIVATE_BUCKET is IMGPIPE_BUCKET"},
	} {
		if _, err := LoadFrom(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error containing %q", err, tc.want)
		}
	}
	// On the emulators both are accepted.
	if _, err := LoadFrom(env(with("IMGPIPE_WEBHOOK_SECRETS", DevWebhookSecret, "IMGPIPE_VIEW_LINK_KEYS", DevViewLinkKey,
		"FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086"))); err != nil {
		t.Errorf("development secrets on the emulators: %v", err)
	}
}

// The configuration table of functions/OPERATING.md lists every variable.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../functions/OPERATING.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables {
		def := "–"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		if row := "| `" + v.Name + "` | " + def + " | " + v.Doc + " |"; !strings.Contains(string(b), row+"\n") {
			t.Errorf("functions/OPERATING.md's configuration table lacks the row %s", row)
		}
	}
}
