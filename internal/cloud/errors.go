package cloud

import (
	"errors"

	"github.com/aws/smithy-go"
)

// ErrorKind is what an AWS error means to the operator.
type ErrorKind int

const (
	KindOther ErrorKind = iota
	KindNotFound
	KindThrottled
	KindNoCapacity
	KindUnauthorized
	KindIncorrectState
	KindIdempotencyMismatch
	KindInvalidInput
	KindServerError
	// KindDuplicate: the resource exists already (a create repeated after a crash).
	KindDuplicate
	// KindInUse: something still uses the resource (a group attached to an instance); retry later.
	KindInUse
)

func (k ErrorKind) String() string {
	return [...]string{"Other", "NotFound", "Throttled", "NoCapacity", "Unauthorized",
		"IncorrectState", "IdempotencyMismatch", "InvalidInput", "ServerError", "Duplicate", "InUse"}[k]
}

var kindByCode = map[string]ErrorKind{
	"InvalidInstanceID.NotFound":                KindNotFound,
	"InvalidVolume.NotFound":                    KindNotFound,
	"InvalidSnapshot.NotFound":                  KindNotFound,
	"InvalidAMIID.NotFound":                     KindNotFound,
	"InvalidSubnetID.NotFound":                  KindNotFound,
	"InvalidGroup.NotFound":                     KindNotFound,
	"InvalidKeyPair.NotFound":                   KindNotFound,
	"InvalidVolumeModification.NotFound":        KindNotFound,
	"ParameterNotFound":                         KindNotFound,
	"AWS.SimpleQueueService.NonExistentQueue":   KindNotFound,
	"QueueDoesNotExist":                         KindNotFound,
	"RequestLimitExceeded":                      KindThrottled,
	"Throttling":                                KindThrottled,
	"ThrottlingException":                       KindThrottled,
	"RequestThrottled":                          KindThrottled,
	"SnapshotCreationPerVolumeRateExceeded":     KindThrottled,
	"InsufficientInstanceCapacity":              KindNoCapacity,
	"InsufficientHostCapacity":                  KindNoCapacity,
	"InsufficientReservedInstanceCapacity":      KindNoCapacity,
	"SpotMaxPriceTooLow":                        KindNoCapacity,
	"MaxSpotInstanceCountExceeded":              KindNoCapacity,
	"Unsupported":                               KindNoCapacity,
	"UnauthorizedOperation":                     KindUnauthorized,
	"AuthFailure":                               KindUnauthorized,
	"AccessDenied":                              KindUnauthorized,
	"AccessDeniedException":                     KindUnauthorized,
	"IncorrectState":                            KindIncorrectState,
	"IncorrectInstanceState":                    KindIncorrectState,
	"IncorrectModificationState":                KindIncorrectState,
	"VolumeInUse":                               KindIncorrectState,
	"InvalidVolume.NotAttached":                 KindIncorrectState,
	"InvalidAttachment.NotFound":                KindIncorrectState,
	"InvalidSnapshot.InUse":                     KindIncorrectState,
	"IdempotentParameterMismatch":               KindIdempotencyMismatch,
	"InvalidParameterValue":                     KindInvalidInput,
	"InvalidParameterCombination":               KindInvalidInput,
	"InvalidParameter":                          KindInvalidInput,
	"MissingParameter":                          KindInvalidInput,
	"InvalidVolume.ZoneMismatch":                KindInvalidInput,
	"InternalError":                             KindServerError,
	"InternalFailure":                           KindServerError,
	"ServiceUnavailable":                        KindServerError,
	"Unavailable":                               KindServerError,
	"AWS.SimpleQueueService.ServiceUnavailable": KindServerError,
	"AWS.SimpleQueueService.InternalError":      KindServerError,
	"AWS.SimpleQueueService.RequestThrottled":   KindThrottled,
	"KMS.ThrottlingException":                   KindThrottled,
	CodeLocalRateLimit:                          KindThrottled,
	"InvalidInstanceID.Malformed":               KindInvalidInput,
	"InvalidVolumeID.Malformed":                 KindInvalidInput,
	"InvalidSnapshotID.Malformed":               KindInvalidInput,
	"VcpuLimitExceeded":                         KindNoCapacity,
	"InsufficientFreeAddressesInSubnet":         KindNoCapacity,
	"InvalidGroup.Duplicate":                    KindDuplicate,
	"InvalidPermission.Duplicate":               KindDuplicate,
	"InvalidPermission.NotFound":                KindNotFound,
	"InvalidVpcID.NotFound":                     KindNotFound,
	"InvalidGroupId.Malformed":                  KindInvalidInput,
	"DependencyViolation":                       KindInUse,
}

// Classify maps an AWS error to its kind by its error code.
func Classify(err error) ErrorKind {
	if err == nil {
		return KindOther
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return KindOther
	}
	if kind, ok := kindByCode[apiErr.ErrorCode()]; ok {
		return kind
	}
	if apiErr.ErrorFault() == smithy.FaultServer {
		return KindServerError
	}
	return KindOther
}

// ErrorCode returns the AWS error code, or "" for errors that are not AWS API errors.
func ErrorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// IsNotFound reports whether err says the resource does not exist (or is not visible yet).
func IsNotFound(err error) bool { return Classify(err) == KindNotFound }

// IsAWS reports whether err came from an AWS call: an AWS API error, or a
// call the SDK gave up on (a smithy.OperationError: transport, credentials).
// Errors of the Kubernetes API or of an instance are not AWS's.
func IsAWS(err error) bool {
	var apiErr smithy.APIError
	var opErr *smithy.OperationError
	return errors.As(err, &apiErr) || errors.As(err, &opErr)
}
