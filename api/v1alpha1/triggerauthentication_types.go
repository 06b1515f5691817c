package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// TriggerAuthentication holds references to the secrets a trigger needs (passwords, TLS material).
// Triggers name it in authenticationRef; each entry fills one trigger parameter from a Secret key in the
// same namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories=ebb,shortName=ebbta
type TriggerAuthentication struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TriggerAuthenticationSpec `json:"spec"`
}

// TriggerAuthenticationSpec lists where each secret parameter comes from.
type TriggerAuthenticationSpec struct {
	// SecretTargetRef fills trigger parameters from Secret keys.
	//
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=parameter
	SecretTargetRef []SecretTargetRef `json:"secretTargetRef"`
}

// SecretTargetRef fills one trigger parameter from a key of a Secret.
type SecretTargetRef struct {
	// Parameter is the trigger parameter to fill, such as password or tls: a metadata key's name.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9_]*$`
	Parameter string `json:"parameter"`

	// Name of the Secret, in the TriggerAuthentication's namespace: a DNS subdomain, as every Secret's
	// name is (no namespace prefix such as ns/name).
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Name string `json:"name"`

	// Key in the Secret's data: letters, digits, '-', '_' and '.', as a Secret's keys are.
	//
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// TriggerAuthenticationList is a list of TriggerAuthentications.
//
// +kubebuilder:object:root=true
type TriggerAuthenticationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TriggerAuthentication `json:"items"`
}
