package v1alpha1_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ebbscale/ebb/scalers/builtin"
)

// target is the scaleTargetRef of the cases. TestAdmissionTable names it after the case, since a target
// has one ScaledConsumer (a second is refused as TargetConflict), and creates it for the cases that need it.
const target = "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: " + targetPlaceholder + "}\n"

// targetPlaceholder in a spec is replaced by the case's object name.
const targetPlaceholder = "TARGET"

// kafkaTrigger is a trigger ebb accepts (its broker is never reached: the cases do not get that far).
const kafkaTrigger = "triggers: [{type: kafka, metadata: {bootstrapServers: '127.0.0.1:1', consumerGroup: g, topic: t}}]\n"

// spec is a valid ScaledConsumer spec plus extra, YAML lines at the spec's level.
func spec(extra string) string { return target + kafkaTrigger + extra }

// trigger is a spec with one trigger of typ whose metadata is the YAML flow map md.
func trigger(typ, md string) string {
	return target + fmt.Sprintf("triggers: [{type: %s, metadata: %s}]\n", typ, md)
}

// deadLetter is a valid spec with a deadLetter of typ whose metadata is md.
func deadLetter(typ, md string) string {
	return spec(fmt.Sprintf("deadLetter: {type: %s, maxRatio: '0.5', metadata: %s}\n", typ, md))
}

// secretRef is a TriggerAuthentication spec with one entry.
func secretRef(parameter, name, key string) string {
	return fmt.Sprintf("secretTargetRef: [{parameter: %q, name: %q, key: %q}]", parameter, name, key)
}

// admissionCases is the table of TestAdmissionTable: at least 100 malformed objects.
func admissionCases() []admissionCase {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []admissionCase{
		// Names.
		{name: "name-64", objName: long(64), spec: spec(""), wantField: "metadata.name", wantMessage: "at most 63 characters"},

		// Replica counts: above the bound, above int32, of the wrong type.
		{name: "max-replicas-above-int32", spec: spec("maxReplicas: 2147483648\n"), wantField: "spec.maxReplicas"},
		{name: "max-replicas-above-bound", spec: spec("maxReplicas: 100001\n"), wantField: "spec.maxReplicas", wantMessage: "less than or equal to 100000"},
		{name: "max-replicas-string", spec: spec("maxReplicas: many\n"), wantField: "spec.maxReplicas", wantMessage: "integer"},
		{name: "max-replicas-fraction", spec: spec("maxReplicas: 1.5\n"), wantField: "spec.maxReplicas"},
		{name: "min-replicas-above-bound", spec: spec("minReplicas: 100001\nmaxReplicas: 100000\n"), wantField: "spec.minReplicas", wantMessage: "less than or equal to 100000"},
		{name: "min-replicas-above-int32", spec: spec("minReplicas: 9999999999\n"), wantField: "spec.minReplicas"},
		{name: "idle-replicas-negative", spec: spec("minReplicas: 2\nidleReplicas: -1\n"), wantField: "spec.idleReplicas", wantMessage: "greater than or equal to 0"},
		{name: "idle-replicas-above-bound", spec: spec("idleReplicas: 100001\n"), wantField: "spec.idleReplicas", wantMessage: "less than or equal to 100000"},
		{name: "fallback-replicas-zero", spec: spec("fallback: {replicas: 0}\n"), wantField: "spec.fallback.replicas", wantMessage: "greater than or equal to 1"},
		{name: "fallback-replicas-above-bound", spec: spec("fallback: {replicas: 100001}\n"), wantField: "spec.fallback.replicas", wantMessage: "less than or equal to 100000"},
		{name: "fallback-threshold-above-bound", spec: spec("fallback: {replicas: 1, failureThreshold: 100001}\n"), wantField: "spec.fallback.failureThreshold", wantMessage: "less than or equal to 100000"},
		{name: "guard-stalled-above-bound", spec: spec("guard: {stalledAfterPolls: 100001}\n"), wantField: "spec.guard.stalledAfterPolls", wantMessage: "less than or equal to 100000"},

		// Durations: absurd values are refused with the field's maximum, never with a conversion error.
		{name: "polling-absurd", spec: spec("pollingInterval: 999999999h\n"), wantField: "spec.pollingInterval", wantMessage: "pollingInterval must be at most 1h"},
		{name: "polling-above-max", spec: spec("pollingInterval: 1h0m1s\n"), wantField: "spec.pollingInterval", wantMessage: "pollingInterval must be at most 1h"},
		{name: "polling-below-min", spec: spec("pollingInterval: 99ms\n"), wantField: "spec.pollingInterval", wantMessage: "at least 100ms"},
		{name: "polling-word", spec: spec("pollingInterval: soon\n"), wantField: "spec.pollingInterval", wantMessage: "should match"},
		{name: "polling-empty", spec: spec("pollingInterval: ''\n"), wantField: "spec.pollingInterval", wantMessage: "should match"},
		{name: "polling-number", spec: spec("pollingInterval: 5\n"), wantField: "spec.pollingInterval"},
		{name: "polling-too-long", spec: spec("pollingInterval: " + strings.Repeat("1s", 17) + "\n"), wantField: "spec.pollingInterval", wantMessage: "Too long"},
		{name: "cooldown-absurd", spec: spec("cooldownPeriod: 999999999h\n"), wantField: "spec.cooldownPeriod", wantMessage: "cooldownPeriod must be at most 168h"},
		{name: "cooldown-sum-above-max", spec: spec("cooldownPeriod: 99999h99999h99999h99999h99999h\n"), wantField: "spec.cooldownPeriod", wantMessage: "cooldownPeriod must be at most 168h"},
		{name: "cooldown-above-max", spec: spec("cooldownPeriod: 169h\n"), wantField: "spec.cooldownPeriod", wantMessage: "cooldownPeriod must be at most 168h"},
		{name: "cooldown-zero", spec: spec("cooldownPeriod: 0s\n"), wantField: "spec.cooldownPeriod", wantMessage: "cooldownPeriod must be positive"},
		{name: "cooldown-days", spec: spec("cooldownPeriod: 2d\n"), wantField: "spec.cooldownPeriod", wantMessage: "should match"},
		{name: "initial-cooldown-absurd", spec: spec("initialCooldownPeriod: 99999999999h\n"), wantField: "spec.initialCooldownPeriod", wantMessage: "initialCooldownPeriod must be at most 168h"},
		{name: "initial-cooldown-above-max", spec: spec("initialCooldownPeriod: 10081m\n"), wantField: "spec.initialCooldownPeriod", wantMessage: "initialCooldownPeriod must be at most 168h"},
		{name: "initial-cooldown-negative", spec: spec("initialCooldownPeriod: -1m\n"), wantField: "spec.initialCooldownPeriod", wantMessage: "should match"},
		{name: "window-absurd", spec: spec("deadLetter: {type: kafka, maxRatio: '0.5', window: 999999999h}\n"), wantField: "spec.deadLetter.window", wantMessage: "window must be at most 1h"},
		{name: "window-above-max", spec: spec("deadLetter: {type: kafka, maxRatio: '0.5', window: 61m}\n"), wantField: "spec.deadLetter.window", wantMessage: "window must be at most 1h"},
		{name: "window-word", spec: spec("deadLetter: {type: kafka, maxRatio: '0.5', window: minute}\n"), wantField: "spec.deadLetter.window", wantMessage: "should match"},
		{name: "release-after-absurd", spec: spec("guard: {releaseAfter: 999999999h}\n"), wantField: "spec.guard.releaseAfter", wantMessage: "releaseAfter must be at most 24h"},
		{name: "release-after-above-max", spec: spec("guard: {releaseAfter: 25h}\n"), wantField: "spec.guard.releaseAfter", wantMessage: "releaseAfter must be at most 24h"},
		{name: "release-after-word", spec: spec("guard: {releaseAfter: later}\n"), wantField: "spec.guard.releaseAfter", wantMessage: "should match"},

		// The target.
		{name: "target-name-invalid", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: Bad_Name}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.name", wantMessage: "should match"},
		{name: "target-name-with-namespace", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: shop/orders}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.name", wantMessage: "should match"},
		{name: "target-name-too-long", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: " + long(254) + "}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.name", wantMessage: "Too long"},
		{name: "target-kind-space", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: 'Deploy ment', name: x}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.kind", wantMessage: "should match"},
		{name: "target-kind-too-long", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: " + long(64) + ", name: x}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.kind", wantMessage: "Too long"},
		{name: "target-api-version-three-parts", spec: "scaleTargetRef: {apiVersion: apps/v1/beta, kind: Deployment, name: x}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.apiVersion", wantMessage: "should match"},
		{name: "target-api-version-upper", spec: "scaleTargetRef: {apiVersion: Apps/V1, kind: Deployment, name: x}\n" + kafkaTrigger, wantField: "spec.scaleTargetRef.apiVersion", wantMessage: "should match"},
		{name: "target-missing", spec: kafkaTrigger, wantField: "spec.scaleTargetRef", wantMessage: "Required value"},

		// The trigger list and each trigger's own fields.
		{name: "triggers-33", spec: target + "triggers: [" + strings.Repeat("{type: kafka}, ", 32) + "{type: kafka}]\n", wantField: "spec.triggers", wantMessage: "must have at most 32 items"},
		{name: "triggers-empty", spec: target + "triggers: []\n", wantField: "spec.triggers", wantMessage: "at least 1 items"},
		{name: "trigger-name-upper", spec: target + "triggers: [{name: Lag, type: kafka}]\n", wantField: "spec.triggers[0].name", wantMessage: "should match"},
		{name: "trigger-name-too-long", spec: target + "triggers: [{name: " + long(64) + ", type: kafka}]\n", wantField: "spec.triggers[0].name", wantMessage: "Too long"},
		{name: "trigger-type-upper", spec: target + "triggers: [{type: Kafka}]\n", wantField: "spec.triggers[0].type", wantMessage: "should match"},
		{name: "trigger-type-empty", spec: target + "triggers: [{type: ''}]\n", wantField: "spec.triggers[0].type"},
		{name: "trigger-type-too-long", spec: target + "triggers: [{type: " + long(64) + "}]\n", wantField: "spec.triggers[0].type", wantMessage: "Too long"},
		{name: "trigger-names-duplicate", spec: target + "triggers: [{type: kafka}, {type: kafka}]\n", wantField: "spec.triggers", wantMessage: "trigger names must be unique"},
		{name: "trigger-unknown-field", spec: target + "triggers: [{type: kafka, metdata: {a: b}}]\n", wantField: "spec.triggers[0].metdata", wantMessage: "unknown field"},
		{name: "auth-ref-with-namespace", spec: target + "triggers: [{type: kafka, authenticationRef: {name: chaos/creds}}]\n", wantField: "spec.triggers[0].authenticationRef.name", wantMessage: "should match"},
		{name: "auth-ref-empty", spec: target + "triggers: [{type: kafka, authenticationRef: {name: ''}}]\n", wantField: "spec.triggers[0].authenticationRef.name"},
		{name: "hpa-name-too-long", spec: spec("hpa: {name: " + long(254) + "}\n"), wantField: "spec.hpa.name", wantMessage: "Too long"},
		{name: "hpa-name-upper", spec: spec("hpa: {name: MyHPA}\n"), wantField: "spec.hpa.name", wantMessage: "should match"},

		// Metadata: its size, its keys, and values brokers would refuse.
		{name: "metadata-65-keys", spec: trigger("kafka", "{"+manyKeys(65)+"}"), wantField: "spec.triggers[0].metadata", wantMessage: "must have at most 64 items"},
		{name: "metadata-key-too-long", spec: trigger("kafka", "{"+long(64)+": x}"), wantField: "spec.triggers[0].metadata", wantMessage: "metadata keys are 1 to 63 characters"},
		{name: "metadata-key-empty", spec: trigger("kafka", "{'': x}"), wantField: "spec.triggers[0].metadata", wantMessage: "metadata keys are 1 to 63 characters"},
		{name: "metadata-value-100000", spec: trigger("kafka", "{topic: "+long(100000)+"}"), wantField: "spec.triggers[0].metadata.topic", wantMessage: "Too long"},
		{name: "metadata-unknown-key-value-100000", spec: trigger("rabbitmq", "{notes: "+long(100000)+"}"), wantField: "spec.triggers[0].metadata.notes", wantMessage: "Too long"},
		{name: "kafka-topic-250", spec: trigger("kafka", "{topic: "+long(250)+"}"), wantField: "spec.triggers[0].metadata.[topic]", wantMessage: "at most 249 characters"},
		{name: "kafka-topic-space", spec: trigger("kafka", "{topic: 'my orders'}"), wantField: "spec.triggers[0].metadata.[topic]", wantMessage: "at most 249 characters of letters"},
		{name: "kafka-topic-slash", spec: trigger("kafka", "{topic: orders/eu}"), wantField: "spec.triggers[0].metadata.[topic]", wantMessage: "at most 249 characters of letters"},
		{name: "rabbitmq-queue-256-bytes", spec: trigger("rabbitmq", "{queueName: "+strings.Repeat("é", 128)+"}"), wantField: "spec.triggers[0].metadata.[queueName]", wantMessage: "at most 255 bytes"},
		{name: "rabbitmq-vhost-256-bytes", spec: trigger("rabbitmq", "{vhostName: "+long(256)+"}"), wantField: "spec.triggers[0].metadata.[vhostName]", wantMessage: "at most 255 bytes"},
		{name: "nats-stream-dot", spec: trigger("nats-jetstream", "{stream: orders.eu}"), wantField: "spec.triggers[0].metadata.[stream]", wantMessage: "without whitespace"},
		{name: "nats-stream-space", spec: trigger("nats-jetstream", "{stream: 'my orders'}"), wantField: "spec.triggers[0].metadata.[stream]", wantMessage: "without whitespace"},
		{name: "nats-stream-256-bytes", spec: trigger("nats-jetstream", "{stream: "+long(256)+"}"), wantField: "spec.triggers[0].metadata.[stream]", wantMessage: "at most 255 bytes"},
		{name: "nats-consumer-wildcard", spec: trigger("nats-jetstream", "{consumer: 'c*'}"), wantField: "spec.triggers[0].metadata.[consumer]", wantMessage: "without whitespace"},
		{name: "nats-consumer-slash", spec: trigger("nats-jetstream", "{consumer: a/b}"), wantField: "spec.triggers[0].metadata.[consumer]", wantMessage: "without whitespace"},
		{name: "nats-consumer-backslash", spec: trigger("nats-jetstream", `{consumer: 'a\b'}`), wantField: "spec.triggers[0].metadata.[consumer]", wantMessage: "without whitespace"},

		// Credentials in metadata never reach etcd.
		{name: "rabbitmq-amqp-url-password", spec: trigger("rabbitmq", "{host: 'amqp://user:pass@rmq:5672/', queueName: q}"), wantField: "spec.triggers[0].metadata.[host]", wantMessage: "a URL with a password in it"},
		{name: "rabbitmq-http-url-password", spec: trigger("rabbitmq", "{host: 'http://guest:guest@rmq:15672/', queueName: q}"), wantField: "spec.triggers[0].metadata.[host]", wantMessage: "a URL with a password in it"},
		{name: "nats-url-password", spec: trigger("nats-jetstream", "{natsServerURL: 'nats://a:4222,nats://u:p@b:4222', stream: s, consumer: c}"), wantField: "spec.triggers[0].metadata.[natsServerURL]", wantMessage: "a URL with a password in it"},
		{name: "unknown-type-url-password", spec: trigger("sqs", "{host: 'https://key:secret@sqs.example/q'}"), wantField: "spec.triggers[0].metadata.[host]", wantMessage: "a URL with a password in it"},
		{name: "unknown-type-password", spec: trigger("sqs", "{password: hunter2}"), wantField: "spec.triggers[0].metadata.[password]", wantMessage: "a secret does not belong in metadata"},
		{name: "cron-token", spec: trigger("cron", "{token: abc}"), wantField: "spec.triggers[0].metadata.[token]", wantMessage: "a secret does not belong in metadata"},
		{name: "second-trigger-password", spec: target + "triggers: [{type: cron}, {type: kafka, metadata: {password: x}}]\n", wantField: "spec.triggers[1].metadata.[password]", wantMessage: "a secret does not belong in metadata"},

		// The dead-letter queue: the same rules as a trigger's metadata.
		{name: "dead-letter-type-upper", spec: spec("deadLetter: {type: RabbitMQ, maxRatio: '0.5'}\n"), wantField: "spec.deadLetter.type", wantMessage: "should match"},
		{name: "dead-letter-password", spec: deadLetter("rabbitmq", "{password: x}"), wantField: "spec.deadLetter.metadata.[password]", wantMessage: "a secret does not belong in metadata"},
		{name: "dead-letter-url-password", spec: deadLetter("rabbitmq", "{host: 'http://u:p@rmq:15672/'}"), wantField: "spec.deadLetter.metadata.[host]", wantMessage: "a URL with a password in it"},
		{name: "dead-letter-topic-long", spec: deadLetter("kafka", "{topic: "+long(250)+"}"), wantField: "spec.deadLetter.metadata.[topic]", wantMessage: "at most 249 characters"},
		{name: "dead-letter-value-100000", spec: deadLetter("kafka", "{topic: "+long(100000)+"}"), wantField: "spec.deadLetter.metadata.topic", wantMessage: "Too long"},
		{name: "dead-letter-queue-256-bytes", spec: deadLetter("rabbitmq", "{queueName: "+long(256)+"}"), wantField: "spec.deadLetter.metadata.[queueName]", wantMessage: "at most 255 bytes"},
		{name: "dead-letter-stream-dot", spec: deadLetter("nats-jetstream", "{stream: a.b}"), wantField: "spec.deadLetter.metadata.[stream]", wantMessage: "without whitespace"},
		{name: "dead-letter-65-keys", spec: deadLetter("kafka", "{"+manyKeys(65)+"}"), wantField: "spec.deadLetter.metadata", wantMessage: "must have at most 64 items"},

		// TriggerAuthentications.
		{name: "ta-secret-with-namespace", kind: "TriggerAuthentication", spec: secretRef("password", "chaos/rmq-user", "password"), wantField: "spec.secretTargetRef[0].name", wantMessage: "should match"},
		{name: "ta-secret-upper", kind: "TriggerAuthentication", spec: secretRef("password", "RMQ", "password"), wantField: "spec.secretTargetRef[0].name", wantMessage: "should match"},
		{name: "ta-secret-too-long", kind: "TriggerAuthentication", spec: secretRef("password", long(254), "password"), wantField: "spec.secretTargetRef[0].name", wantMessage: "Too long"},
		{name: "ta-secret-empty", kind: "TriggerAuthentication", spec: secretRef("password", "", "password"), wantField: "spec.secretTargetRef[0].name"},
		{name: "ta-key-slash", kind: "TriggerAuthentication", spec: secretRef("password", "creds", "a/b"), wantField: "spec.secretTargetRef[0].key", wantMessage: "should match"},
		{name: "ta-key-too-long", kind: "TriggerAuthentication", spec: secretRef("password", "creds", long(254)), wantField: "spec.secretTargetRef[0].key", wantMessage: "Too long"},
		{name: "ta-key-empty", kind: "TriggerAuthentication", spec: secretRef("password", "creds", ""), wantField: "spec.secretTargetRef[0].key"},
		{name: "ta-parameter-space", kind: "TriggerAuthentication", spec: secretRef("pass word", "creds", "password"), wantField: "spec.secretTargetRef[0].parameter", wantMessage: "should match"},
		{name: "ta-parameter-too-long", kind: "TriggerAuthentication", spec: secretRef(long(64), "creds", "password"), wantField: "spec.secretTargetRef[0].parameter", wantMessage: "Too long"},
		{name: "ta-parameter-empty", kind: "TriggerAuthentication", spec: secretRef("", "creds", "password"), wantField: "spec.secretTargetRef[0].parameter"},
		{name: "ta-65-entries", kind: "TriggerAuthentication", spec: manyRefs(65), wantField: "spec.secretTargetRef", wantMessage: "must have at most 64 items"},
		{name: "ta-empty", kind: "TriggerAuthentication", spec: "secretTargetRef: []", wantField: "spec.secretTargetRef", wantMessage: "at least 1 items"},
		{name: "ta-duplicate-parameter", kind: "TriggerAuthentication", spec: "secretTargetRef: [{parameter: p, name: a, key: k}, {parameter: p, name: b, key: k}]", wantField: "spec.secretTargetRef[1]", wantMessage: "Duplicate value"},
		{name: "ta-unknown-field", kind: "TriggerAuthentication", spec: "secretTargetRef: [{parameter: p, name: a, key: k, namespace: chaos}]", wantField: "spec.secretTargetRef[0].namespace", wantMessage: "unknown field"},

		// Accepted, and reported by ebb: what admission cannot know (the registry, other objects, the
		// parsers' rules).
		{name: "unknown-trigger-type", spec: trigger("kafak", "{topic: t}"), wantReason: "InvalidTrigger", wantNote: `unknown trigger type "kafak"`},
		{name: "kafka-unknown-key", spec: trigger("kafka", "{bootstrapServers: k, consumerGroup: g, lagThreshhold: '5'}"), wantReason: "InvalidTrigger", wantNote: "lagThreshhold"},
		{name: "kafka-bad-number", spec: trigger("kafka", "{bootstrapServers: k, consumerGroup: g, lagThreshold: lots}"), wantReason: "InvalidTrigger", wantNote: "lagThreshold"},
		{name: "kafka-missing-group", spec: trigger("kafka", "{bootstrapServers: k}"), wantReason: "InvalidTrigger", wantNote: "consumerGroup"},
		{name: "kafka-partitions-without-topic", spec: trigger("kafka", "{bootstrapServers: k, consumerGroup: g, partitionLimitation: '1,2'}"), wantReason: "InvalidTrigger", wantNote: "partitionLimitation"},
		{name: "kafka-bad-enum", spec: trigger("kafka", "{bootstrapServers: k, consumerGroup: g, offsetResetPolicy: newest}"), wantReason: "InvalidTrigger", wantNote: "offsetResetPolicy"},
		{name: "rabbitmq-bad-mode", spec: trigger("rabbitmq", "{host: 'amqp://rmq', queueName: q, mode: Bogus}"), wantReason: "InvalidTrigger", wantNote: "mode"},
		{name: "rabbitmq-page-size", spec: trigger("rabbitmq", "{host: 'http://rmq:15672', queueName: q, pageSize: '501'}"), wantReason: "InvalidTrigger", wantNote: "pageSize"},
		{name: "rabbitmq-user-without-password", spec: trigger("rabbitmq", "{host: 'amqp://rmq', queueName: q, username: u}"), wantReason: "InvalidTrigger", wantNote: "password"},
		{name: "nats-missing-stream", spec: trigger("nats-jetstream", "{natsServerURL: 'nats://n:4222', consumer: c}"), wantReason: "InvalidTrigger", wantNote: "stream"},
		{name: "nats-bad-scheme", spec: trigger("nats-jetstream", "{natsServerURL: 'http://n:4222', stream: s, consumer: c}"), wantReason: "InvalidTrigger", wantNote: "natsServerURL"},
		{name: "cron-bad-zone", spec: trigger("cron", "{timezone: Mars/Olympus, start: '0 8 * * *', end: '0 18 * * *', desiredReplicas: '2'}"), wantReason: "InvalidTrigger", wantNote: "timezone"},
		{name: "cron-zero-replicas", spec: trigger("cron", "{timezone: UTC, start: '0 8 * * *', end: '0 18 * * *', desiredReplicas: '0'}"), wantReason: "InvalidTrigger", wantNote: "desiredReplicas"},
		{name: "auth-not-found", spec: target + "triggers: [{type: kafka, metadata: {bootstrapServers: k, consumerGroup: g}, authenticationRef: {name: absent}}]\n", wantReason: "AuthenticationNotFound", wantNote: `TriggerAuthentication "absent" not found`},
		{name: "auth-secret-not-found", spec: target + "triggers: [{type: kafka, metadata: {bootstrapServers: k, consumerGroup: g}, authenticationRef: {name: no-secret}}]\n", wantReason: "AuthenticationNotFound", wantNote: `Secret "absent" not found`},
		{name: "auth-secret-key-missing", spec: target + "triggers: [{type: kafka, metadata: {bootstrapServers: k, consumerGroup: g}, authenticationRef: {name: missing-key}}]\n", wantReason: "AuthenticationNotFound", wantNote: `has no key "nokey"`},
		{name: "auth-unknown-parameter", spec: target + "triggers: [{type: kafka, metadata: {bootstrapServers: k, consumerGroup: g}, authenticationRef: {name: wrong-param}}]\n", wantReason: "InvalidTrigger", wantNote: "passwd"},
		{name: "auth-password-without-user", spec: target + "triggers: [{type: kafka, metadata: {bootstrapServers: k, consumerGroup: g}, authenticationRef: {name: good}}]\n", wantReason: "InvalidTrigger", wantNote: "username"},
		{name: "dead-letter-unknown-type", spec: spec("deadLetter: {type: sqs, maxRatio: '0.5'}\n"), wantReason: "InvalidDeadLetter", wantNote: "sqs"},
		{name: "dead-letter-kafka-without-topic", spec: deadLetter("kafka", "{bootstrapServers: k}"), wantReason: "InvalidDeadLetter", wantNote: "topic"},
		{name: "dead-letter-auth-not-found", spec: spec("deadLetter: {type: kafka, maxRatio: '0.5', metadata: {bootstrapServers: k, topic: d}, authenticationRef: {name: absent}}\n"), wantReason: "AuthenticationNotFound", wantNote: `TriggerAuthentication "absent" not found`},
		{name: "target-not-found", spec: "scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: absent}\n" + kafkaTrigger, wantReason: "TargetNotFound", wantNote: "absent"},
		{name: "target-kind-unknown", spec: "scaleTargetRef: {apiVersion: example.com/v1, kind: Widget, name: w}\n" + kafkaTrigger, wantReason: "TargetNotFound", wantNote: "Widget"},
		{name: "hpa-behavior-refused", needsTarget: true, spec: spec("hpa: {behavior: {scaleUp: {stabilizationWindowSeconds: 7200}}}\n"), wantReason: "HPAApplyFailed", wantNote: "stabilizationWindowSeconds"},
		{name: "paused-replicas-word", needsTarget: true, spec: spec(""), annotations: map[string]string{"ebb.dev/paused-replicas": "several"}, wantReason: "InvalidPausedReplicas", wantNote: "several"},
	}
	return append(cases, secretKeyCases()...)
}

// secretKeyCases refuses, for every trigger type of the binary, each key its parser takes only from a
// TriggerAuthentication: the CRD's list and the parsers' cannot drift apart.
func secretKeyCases() []admissionCase {
	params, err := builtin.Params()
	if err != nil {
		panic(err)
	}
	var cases []admissionCase
	for _, typ := range slices.Sorted(maps.Keys(params)) {
		for _, p := range params[typ] {
			if !p.Secret {
				continue
			}
			cases = append(cases, admissionCase{
				name: strings.ToLower(fmt.Sprintf("%s-secret-%s", typ, p.Name)), spec: trigger(typ, fmt.Sprintf("{%s: hunter2}", p.Name)),
				wantField: secretKeyPath(p.Name), wantMessage: "does not belong in metadata",
			})
		}
	}
	return cases
}

// secretKeyPath is where the API server says a secret key in the first trigger's metadata is: TLS keys are
// refused by a rule on the trigger (it depends on the type), the others by a rule on the metadata map.
func secretKeyPath(key string) string {
	if key == "ca" || key == "cert" || key == "key" {
		return "spec.triggers[0].metadata[" + key + "]"
	}
	return "spec.triggers[0].metadata.[" + key + "]"
}

// manyKeys is a YAML flow map's body with n keys.
func manyKeys(n int) string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d: v", i)
	}
	return strings.Join(keys, ", ")
}

// manyRefs is a TriggerAuthentication spec with n entries.
func manyRefs(n int) string {
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("{parameter: p%d, name: s, key: k}", i)
	}
	return "secretTargetRef: [" + strings.Join(refs, ", ") + "]"
}
