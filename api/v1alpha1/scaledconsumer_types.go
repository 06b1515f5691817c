package v1alpha1

import (
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ScaledConsumer sizes a workload to the backlog its triggers report: ebb keeps an HPA named
// ebb-<name> on the target, scales the target to zero when every trigger is idle for cooldownPeriod and
// back up on the first event, and holds fallback replicas while the triggers cannot be read.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name must be at most 63 characters: a ScaledConsumer's name is the value of the label ebb.dev/scaledconsumer on its HPA's metrics, and a label value is at most 63 characters"
// +kubebuilder:resource:categories=ebb,shortName=ebbsc
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.scaleTargetRef.name`
// +kubebuilder:printcolumn:name="Kind",type=string,JSONPath=`.spec.scaleTargetRef.kind`,priority=1
// +kubebuilder:printcolumn:name="Min",type=integer,JSONPath=`.spec.minReplicas`
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxReplicas`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Active",type=string,JSONPath=`.status.conditions[?(@.type=="Active")].status`
// +kubebuilder:printcolumn:name="Fallback",type=string,JSONPath=`.status.conditions[?(@.type=="Fallback")].status`,priority=1
// +kubebuilder:printcolumn:name="Healthy",type=string,JSONPath=`.status.conditions[?(@.type=="ConsumersHealthy")].status`
// +kubebuilder:printcolumn:name="Paused",type=string,JSONPath=`.status.conditions[?(@.type=="Paused")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ScaledConsumer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ScaledConsumerSpec   `json:"spec"`
	Status ScaledConsumerStatus `json:"status,omitempty"`
}

// ScaledConsumerSpec is what the user asks for.
//
// +kubebuilder:validation:XValidation:rule="self.minReplicas <= self.maxReplicas",message="maxReplicas must be greater than or equal to minReplicas",fieldPath=".maxReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.idleReplicas) || self.idleReplicas < self.minReplicas",message="idleReplicas must be less than minReplicas",fieldPath=".idleReplicas"
// +kubebuilder:validation:XValidation:rule="!has(self.fallback) || self.fallback.replicas <= self.maxReplicas",message="fallback.replicas must not exceed maxReplicas",fieldPath=".fallback.replicas"
type ScaledConsumerSpec struct {
	// ScaleTargetRef names the workload to scale: anything with a /scale subresource (a Deployment, a
	// StatefulSet, a custom resource).
	ScaleTargetRef ScaleTargetRef `json:"scaleTargetRef"`

	// MinReplicas is the lowest replica count while the triggers are active. 0 lets ebb scale the target
	// to zero (or to idleReplicas) after cooldownPeriod without activity. Default 0, at most 100000.
	//
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the highest replica count the HPA may set. Default 100, at most 100000.
	//
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MaxReplicas *int32 `json:"maxReplicas,omitempty"`

	// IdleReplicas, when set, is the replica count while no trigger is active, instead of 0. It must be
	// less than minReplicas (KEDA's idleReplicaCount).
	//
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	// +optional
	IdleReplicas *int32 `json:"idleReplicas,omitempty"`

	// PollingInterval is how often each trigger is sampled: from 100ms to 1h. Default 5s.
	//
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('100ms')`,message=`pollingInterval must be at least 100ms`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('1h'))`,message=`pollingInterval must be at most 1h`
	// +optional
	PollingInterval *metav1.Duration `json:"pollingInterval,omitempty"`

	// CooldownPeriod is how long every trigger must stay inactive before ebb scales the target to
	// idleReplicas or zero: more than 0, at most 168h (7 days). Default 300s.
	//
	// +kubebuilder:default="300s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) > duration('0s')`,message=`cooldownPeriod must be positive`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('168h'))`,message=`cooldownPeriod must be at most 168h (7 days)`
	// +optional
	CooldownPeriod *metav1.Duration `json:"cooldownPeriod,omitempty"`

	// InitialCooldownPeriod is how long after creation ebb waits before it may scale the target to zero
	// for the first time: at most 168h (7 days). Default 0s.
	//
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+)$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^(0|([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+)$') || (self.matches('^(0|([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+)$') && duration(self) <= duration('168h'))`,message=`initialCooldownPeriod must be at most 168h (7 days)`
	// +optional
	InitialCooldownPeriod *metav1.Duration `json:"initialCooldownPeriod,omitempty"`

	// Fallback, when set, holds the target at fallback.replicas while a trigger has failed
	// failureThreshold samples in a row. Without it a failing trigger leaves the replica count alone.
	//
	// +optional
	Fallback *Fallback `json:"fallback,omitempty"`

	// HPA customises the HorizontalPodAutoscaler ebb manages for this ScaledConsumer.
	//
	// +optional
	HPA *HPAConfig `json:"hpa,omitempty"`

	// Triggers are the sources of backlog. The HPA follows the one that asks for the most replicas.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, self.exists_one(u, (has(u.name) ? u.name : u.type) == (has(t.name) ? t.name : t.type)))",message="trigger names must be unique; a trigger without a name is named after its type"
	// +listType=atomic
	Triggers []Trigger `json:"triggers"`

	// DeadLetter is the consumers' dead-letter queue (RabbitMQ) or topic (Kafka). The consumer-health guard
	// watches how fast it grows, and holds scale-up while it says the consumers are failing: more
	// consumers that fail only fill it faster.
	//
	// +optional
	DeadLetter *DeadLetter `json:"deadLetter,omitempty"`

	// Guard configures the consumer-health guard, which holds scale-up while the dead-letter queue grows
	// too fast or a Kafka group is stalled or rewound. It is on by default.
	//
	// +optional
	Guard *Guard `json:"guard,omitempty"`
}

// DeadLetter is a dead-letter queue or topic and the limits on what enters it.
//
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('ca' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set ca through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.ca`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('cert' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set cert through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.cert`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('key' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set key through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.key`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="has(self.maxInflowPerMinute) || has(self.maxRatio)",message="set maxInflowPerMinute, maxRatio or both: without a limit the dead-letter queue cannot trip the guard"
type DeadLetter struct {
	// Type is the broker: rabbitmq (a queue, read through the management API) or kafka (a topic).
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Type string `json:"type"`

	// Metadata names the queue or topic and how to reach it, with the trigger type's keys: rabbitmq takes
	// host (an http(s) management API URL), queueName, vhostName and the credential and TLS keys; kafka
	// takes bootstrapServers, topic and the SASL and TLS keys.
	//
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule=`self.all(k, size(k) >= 1 && size(k) <= 63)`,message=`metadata keys are 1 to 63 characters`
	// +kubebuilder:validation:XValidation:rule=`!('password' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set password through a TriggerAuthentication (authenticationRef)`,fieldPath=`['password']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('token' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set token through a TriggerAuthentication (authenticationRef)`,fieldPath=`['token']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('nkeySeed' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set nkeySeed through a TriggerAuthentication (authenticationRef)`,fieldPath=`['nkeySeed']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('creds' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set creds through a TriggerAuthentication (authenticationRef)`,fieldPath=`['creds']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('host' in self) || !self['host'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set host (or username and password) through a TriggerAuthentication`,fieldPath=`['host']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('natsServerURL' in self) || !self['natsServerURL'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set natsServerURL (or username and password) through a TriggerAuthentication`,fieldPath=`['natsServerURL']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('natsServerMonitoringEndpoint' in self) || !self['natsServerMonitoringEndpoint'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set natsServerMonitoringEndpoint (or username and password) through a TriggerAuthentication`,fieldPath=`['natsServerMonitoringEndpoint']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('bootstrapServers' in self) || !self['bootstrapServers'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set bootstrapServers (or username and password) through a TriggerAuthentication`,fieldPath=`['bootstrapServers']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('topic' in self) || self['topic'].matches('^[a-zA-Z0-9._-]{0,249}$')`,message=`a Kafka topic name is at most 249 characters of letters, digits, '.', '_' and '-'`,fieldPath=`['topic']`
	// +kubebuilder:validation:XValidation:rule=`!('queueName' in self) || bytes(self['queueName']).size() <= 255`,message=`a RabbitMQ queue name (or, with useRegex, expression) is at most 255 bytes`,fieldPath=`['queueName']`
	// +kubebuilder:validation:XValidation:rule=`!('vhostName' in self) || bytes(self['vhostName']).size() <= 255`,message=`a RabbitMQ vhost name is at most 255 bytes`,fieldPath=`['vhostName']`
	// +kubebuilder:validation:XValidation:rule=`!('stream' in self) || (bytes(self['stream']).size() <= 255 && !self['stream'].matches(r'[\s.*>/\\]'))`,message=`a NATS JetStream stream name is at most 255 bytes, without whitespace, '.', '*', '>', '/' or '\'`,fieldPath=`['stream']`
	// +kubebuilder:validation:XValidation:rule=`!('consumer' in self) || (bytes(self['consumer']).size() <= 255 && !self['consumer'].matches(r'[\s.*>/\\]'))`,message=`a NATS JetStream consumer name is at most 255 bytes, without whitespace, '.', '*', '>', '/' or '\'`,fieldPath=`['consumer']`
	// +optional
	Metadata map[string]MetadataValue `json:"metadata,omitempty"`

	// AuthenticationRef names a TriggerAuthentication in the same namespace whose secrets fill in
	// metadata parameters.
	//
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`

	// MaxInflowPerMinute trips the guard when more messages than this enter the dead-letter queue per
	// minute, on average over window.
	//
	// +kubebuilder:validation:XValidation:rule="!quantity(string(self)).isLessThan(quantity('0'))",message="maxInflowPerMinute must not be negative"
	// +optional
	MaxInflowPerMinute *resource.Quantity `json:"maxInflowPerMinute,omitempty"`

	// MaxRatio trips the guard when the share of the messages the consumers finished that went to the
	// dead-letter queue, over window, is above it: 0.5 is half. What the consumers finished is what their
	// group committed (kafka triggers), or what they acknowledged plus what they dead-lettered (rabbitmq
	// triggers that read the management API, protocol http).
	//
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0')) && quantity(string(self)).isLessThan(quantity('1'))",message="maxRatio is a share of the messages consumed: above 0 and below 1 (0.5 is half)"
	// +optional
	MaxRatio *resource.Quantity `json:"maxRatio,omitempty"`

	// Window is the time the inflow and the ratio are averaged over: from 1s to 1h. Default 1m.
	//
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') || duration(self) >= duration('1s')`,message=`window must be at least 1s`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('1h'))`,message=`window must be at most 1h`
	// +optional
	Window *metav1.Duration `json:"window,omitempty"`
}

// Guard configures the consumer-health guard.
type Guard struct {
	// Enabled turns the guard on or off. Default true.
	//
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// StalledAfterPolls: a trigger's consumers are stalled when they have a backlog but their position (a
	// Kafka group's committed offsets, a NATS JetStream consumer's ack floor) has not moved for this many
	// polls in a row while the target has replicas. 0 turns stall detection off.
	// Default 24 (two minutes at the default 5s polling interval), at most 100000.
	//
	// +kubebuilder:default=24
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	// +optional
	StalledAfterPolls *int32 `json:"stalledAfterPolls,omitempty"`

	// ReleaseAfter is how long every signal must stay within its limit before the guard lets scale-up
	// resume: at most 24h. Default 2m.
	//
	// +kubebuilder:default="2m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule=`!self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') || (self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) <= duration('24h'))`,message=`releaseAfter must be at most 24h`
	// +optional
	ReleaseAfter *metav1.Duration `json:"releaseAfter,omitempty"`
}

// ScaleTargetRef identifies the workload to scale.
type ScaleTargetRef struct {
	// APIVersion of the target, such as apps/v1: a group and a version, or a version alone for the core
	// group.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	APIVersion string `json:"apiVersion"`

	// Kind of the target, such as Deployment.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9]*$`
	Kind string `json:"kind"`

	// Name of the target, in the ScaledConsumer's namespace.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// Fallback sets the replica count ebb holds while triggers keep failing.
type Fallback struct {
	// FailureThreshold is how many samples in a row a trigger must fail before fallback applies.
	// Default 3, at most 100000.
	//
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`

	// Replicas is the replica count held while falling back.
	//
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Replicas int32 `json:"replicas"`
}

// HPAConfig customises the HPA ebb manages.
type HPAConfig struct {
	// Name of the HPA. Default ebb-<ScaledConsumer name>. Naming an existing HPA here is how ebb adopts it.
	//
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// Behavior is passed to the HPA's spec.behavior as it is.
	//
	// +optional
	Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
}

// Trigger is one source of backlog.
//
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('ca' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set ca through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.ca`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('cert' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set cert through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.cert`,reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule=`!has(self.metadata) || !('key' in self.metadata) || !(self.type in ['kafka', 'rabbitmq', 'nats-jetstream'])`,message=`TLS material does not belong in metadata, which is stored in plain text: set key through a TriggerAuthentication (authenticationRef)`,fieldPath=`.metadata.key`,reason=FieldValueForbidden
type Trigger struct {
	// Name identifies the trigger in status, metrics and the HPA's metric names. Unique in the list.
	// Default: the type.
	//
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Name string `json:"name,omitempty"`

	// Type of the trigger: kafka, rabbitmq, nats-jetstream, cron, ... An unknown type makes the
	// ScaledConsumer not Ready, with a message listing the known ones.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Type string `json:"type"`

	// Metadata configures the trigger; the keys depend on the type and follow KEDA's names for the same
	// broker. An unknown key is an error.
	//
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule=`self.all(k, size(k) >= 1 && size(k) <= 63)`,message=`metadata keys are 1 to 63 characters`
	// +kubebuilder:validation:XValidation:rule=`!('password' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set password through a TriggerAuthentication (authenticationRef)`,fieldPath=`['password']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('token' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set token through a TriggerAuthentication (authenticationRef)`,fieldPath=`['token']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('nkeySeed' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set nkeySeed through a TriggerAuthentication (authenticationRef)`,fieldPath=`['nkeySeed']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('creds' in self)`,message=`a secret does not belong in metadata, which is stored in plain text: set creds through a TriggerAuthentication (authenticationRef)`,fieldPath=`['creds']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('host' in self) || !self['host'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set host (or username and password) through a TriggerAuthentication`,fieldPath=`['host']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('natsServerURL' in self) || !self['natsServerURL'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set natsServerURL (or username and password) through a TriggerAuthentication`,fieldPath=`['natsServerURL']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('natsServerMonitoringEndpoint' in self) || !self['natsServerMonitoringEndpoint'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set natsServerMonitoringEndpoint (or username and password) through a TriggerAuthentication`,fieldPath=`['natsServerMonitoringEndpoint']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('bootstrapServers' in self) || !self['bootstrapServers'].matches(r'[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s]*:[^/?#@\s]*@')`,message=`a URL with a password in it does not belong in metadata, which is stored in plain text: set bootstrapServers (or username and password) through a TriggerAuthentication`,fieldPath=`['bootstrapServers']`,reason=FieldValueForbidden
	// +kubebuilder:validation:XValidation:rule=`!('topic' in self) || self['topic'].matches('^[a-zA-Z0-9._-]{0,249}$')`,message=`a Kafka topic name is at most 249 characters of letters, digits, '.', '_' and '-'`,fieldPath=`['topic']`
	// +kubebuilder:validation:XValidation:rule=`!('queueName' in self) || bytes(self['queueName']).size() <= 255`,message=`a RabbitMQ queue name (or, with useRegex, expression) is at most 255 bytes`,fieldPath=`['queueName']`
	// +kubebuilder:validation:XValidation:rule=`!('vhostName' in self) || bytes(self['vhostName']).size() <= 255`,message=`a RabbitMQ vhost name is at most 255 bytes`,fieldPath=`['vhostName']`
	// +kubebuilder:validation:XValidation:rule=`!('stream' in self) || (bytes(self['stream']).size() <= 255 && !self['stream'].matches(r'[\s.*>/\\]'))`,message=`a NATS JetStream stream name is at most 255 bytes, without whitespace, '.', '*', '>', '/' or '\'`,fieldPath=`['stream']`
	// +kubebuilder:validation:XValidation:rule=`!('consumer' in self) || (bytes(self['consumer']).size() <= 255 && !self['consumer'].matches(r'[\s.*>/\\]'))`,message=`a NATS JetStream consumer name is at most 255 bytes, without whitespace, '.', '*', '>', '/' or '\'`,fieldPath=`['consumer']`
	// +optional
	Metadata map[string]MetadataValue `json:"metadata,omitempty"`

	// AuthenticationRef names a TriggerAuthentication in the same namespace whose secrets fill in
	// metadata parameters.
	//
	// +optional
	AuthenticationRef *AuthenticationRef `json:"authenticationRef,omitempty"`
}

// TriggerName returns the trigger's name, or its type when the name is empty.
func (t *Trigger) TriggerName() string {
	if t.Name != "" {
		return t.Name
	}
	return t.Type
}

// AuthenticationRef names a TriggerAuthentication.
type AuthenticationRef struct {
	// Name of the TriggerAuthentication in the ScaledConsumer's namespace.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`
}

// ScaledConsumerStatus is what ebb observed and did.
type ScaledConsumerStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	//
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// HPAName is the name of the HPA ebb manages for this ScaledConsumer.
	//
	// +kubebuilder:validation:MaxLength=253
	// +optional
	HPAName string `json:"hpaName,omitempty"`

	// Conditions: Ready, Active, Fallback, Paused, ConsumersHealthy.
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// LastActiveTime is when a trigger last reported activity, or last sampled again after failing (time
	// without a good reading is not idle time). The cooldown counts from it, so a restart of ebb does not
	// reset it.
	//
	// +optional
	LastActiveTime *metav1.Time `json:"lastActiveTime,omitempty"`

	// Triggers holds the last sample of each trigger.
	//
	// +listType=map
	// +listMapKey=name
	// +optional
	Triggers []TriggerStatus `json:"triggers,omitempty"`

	// Guard is the consumer-health guard's last reading; the ConsumersHealthy condition says whether it
	// holds scale-up, and why.
	//
	// +optional
	Guard *GuardStatus `json:"guard,omitempty"`
}

// GuardStatus is what the consumer-health guard last saw.
type GuardStatus struct {
	// HeldReplicas is set while the guard holds scale-up: the HPA's maxReplicas is held at it (the
	// replica count when the guard tripped). Scaling down stays possible.
	//
	// +optional
	HeldReplicas *int32 `json:"heldReplicas,omitempty"`

	// DeadLetterDepth is the number of messages in the dead-letter queue or topic.
	//
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DeadLetterDepth string `json:"deadLetterDepth,omitempty"`

	// DeadLetterInflowPerMinute is the dead-letter inflow, averaged over the window.
	//
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DeadLetterInflowPerMinute string `json:"deadLetterInflowPerMinute,omitempty"`

	// DeadLetterRatio is the share of the messages the consumers finished that were dead-lettered, over the
	// window.
	//
	// +kubebuilder:validation:MaxLength=256
	// +optional
	DeadLetterRatio string `json:"deadLetterRatio,omitempty"`
}

// TriggerStatus is the last sample of one trigger.
type TriggerStatus struct {
	// Name of the trigger.
	//
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`

	// Value is the last metric value, as a Kubernetes quantity (metric=value pairs for a trigger with
	// several metrics).
	//
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Value string `json:"value,omitempty"`

	// Active is whether the value is above the trigger's activation threshold.
	Active bool `json:"active"`

	// Message says what the value means now, when the trigger type has something to add to the number:
	// a cron trigger says when its window next closes or opens. At most 1024 bytes; ebb shortens a longer
	// one.
	//
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Message string `json:"message,omitempty"`

	// LastPollTime is when the trigger was sampled for the value, activity and error shown here. ebb
	// samples every pollingInterval but writes status only when something in it besides this time changes
	// (values, messages, errors and failure counts at most every 30 s), so while a trigger keeps reading
	// the same, this time stays where it was and an idle ScaledConsumer costs no API request. The latest
	// values are in the external metrics API and in the ebb_trigger_value metric.
	//
	// +optional
	LastPollTime *metav1.Time `json:"lastPollTime,omitempty"`

	// LastError is the error of the last sample, empty when it succeeded. At most 4096 bytes; ebb shortens
	// a longer one.
	//
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	LastError string `json:"lastError,omitempty"`

	// ConsecutiveFailures counts the failed samples since the last good one.
	//
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
}

// ScaledConsumerList is a list of ScaledConsumers.
//
// +kubebuilder:object:root=true
type ScaledConsumerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ScaledConsumer `json:"items"`
}
