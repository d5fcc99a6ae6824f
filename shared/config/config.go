// Package config loads imgpipe's settings from the environment. Every
// variable the product reads is listed here, once; Load reports every
// problem at once rather than the first.
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
)

// Config is the whole product's configuration.
type Config struct {
	// Project is the Google Cloud project (GOOGLE_CLOUD_PROJECT).
	Project string
	// Location is the region of the Cloud Tasks queue (IMGPIPE_LOCATION).
	Location string
	// Bucket receives the compressed images (IMGPIPE_BUCKET).
	Bucket string
	// ImagesTopic is the Pub/Sub topic ID with one message per image (IMGPIPE_IMAGES_TOPIC).
	ImagesTopic string
	// WebhookQueue is the Cloud Tasks queue ID for webhook deliveries (IMGPIPE_WEBHOOK_QUEUE).
	WebhookQueue string
	// TasksEmulatorHost is the host:port of a Cloud Tasks emulator; empty in
	// production (CLOUDTASKS_EMULATOR_HOST).
	TasksEmulatorHost string
}

// Variables maps each environment variable to its default ("" = required).
var Variables = map[string]string{
	"GOOGLE_CLOUD_PROJECT":     "",
	"IMGPIPE_LOCATION":         "us-central1",
	"IMGPIPE_BUCKET":           "",
	"IMGPIPE_IMAGES_TOPIC":     "imgpipe-images",
	"IMGPIPE_WEBHOOK_QUEUE":    "imgpipe-webhooks",
	"CLOUDTASKS_EMULATOR_HOST": "-", // optional, no default
}

var (
	projectRE = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	idRE      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$`)
	queueRE   = regexp.MustCompile(`^[A-Za-z0-9-]{1,100}$`)
	bucketRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)
	regionRE  = regexp.MustCompile(`^[a-z]+-[a-z]+[0-9]+$`)
)

// Load reads the configuration from the process environment.
func Load() (Config, error) { return LoadFrom(os.Getenv) }

// LoadFrom reads the configuration through getenv, applying defaults, and
// returns every problem found joined in one error.
func LoadFrom(getenv func(string) string) (Config, error) {
	get := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		if d := Variables[k]; d != "-" {
			return d
		}
		return ""
	}
	c := Config{
		Project:           get("GOOGLE_CLOUD_PROJECT"),
		Location:          get("IMGPIPE_LOCATION"),
		Bucket:            get("IMGPIPE_BUCKET"),
		ImagesTopic:       get("IMGPIPE_IMAGES_TOPIC"),
		WebhookQueue:      get("IMGPIPE_WEBHOOK_QUEUE"),
		TasksEmulatorHost: get("CLOUDTASKS_EMULATOR_HOST"),
	}
	return c, c.Validate()
}

// Validate reports every invalid or missing setting.
func (c Config) Validate() error {
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
	check("IMGPIPE_IMAGES_TOPIC", c.ImagesTopic, idRE, "a Pub/Sub topic ID")
	check("IMGPIPE_WEBHOOK_QUEUE", c.WebhookQueue, queueRE, "a Cloud Tasks queue ID: letters, digits, hyphens")
	return errors.Join(errs...)
}

// TopicName is the full resource name of the images topic.
func (c Config) TopicName() string { return "projects/" + c.Project + "/topics/" + c.ImagesTopic }

// QueueName is the full resource name of the webhook queue.
func (c Config) QueueName() string {
	return "projects/" + c.Project + "/locations/" + c.Location + "/queues/" + c.WebhookQueue
}
