package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := LoadFrom(env(map[string]string{"GOOGLE_CLOUD_PROJECT": "imgpipe-local", "IMGPIPE_BUCKET": "imgpipe-local-images"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Location != "us-central1" || c.ImagesTopic != "imgpipe-images" || c.WebhookQueue != "imgpipe-webhooks" || c.TasksEmulatorHost != "" {
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
	_, err := LoadFrom(env(map[string]string{"IMGPIPE_LOCATION": "mars", "IMGPIPE_WEBHOOK_QUEUE": "has space"}))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"GOOGLE_CLOUD_PROJECT is required",
		"IMGPIPE_BUCKET is required",
		`IMGPIPE_LOCATION="mars" is not a region`,
		`IMGPIPE_WEBHOOK_QUEUE="has space" is not a Cloud Tasks queue ID`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
