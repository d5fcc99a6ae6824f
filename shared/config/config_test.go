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
		"IMGPIPE_WEBHOOK_SECRETS": DevWebhookSecret, "IMGPIPE_WEBHOOK_DELIVERY_URL": "http://127.0.0.1:8080/deliverWebhook",
		"IMGPIPE_SWEEP_URL": "http://127.0.0.1:8080/sweep", "IMGPIPE_TASKS_SERVICE_ACCOUNT": "imgpipe-tasks@imgpipe-local.iam.gserviceaccount.com"}))
	if err != nil {
		t.Fatal(err)
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

// The configuration table of functions/README.md lists every variable.
func TestREADMEListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../functions/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables {
		def := "–"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		if row := "| `" + v.Name + "` | " + def + " | " + v.Doc + " |"; !strings.Contains(string(b), row+"\n") {
			t.Errorf("README's configuration table lacks the row %s", row)
		}
	}
}
