// Package v1alpha1 contains the v1alpha1 API of the xdrive.io group: XDrive and Workstation.
// +kubebuilder:object:generate=true
// +groupName=xdrive.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "xdrive.io", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this group and version to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group and version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &XDrive{}, &XDriveList{}, &Workstation{}, &WorkstationList{}, &WorkstationClass{}, &WorkstationClassList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
