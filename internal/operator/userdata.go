package operator

import (
	"github.com/xdrive-io/xdrive/internal/bootstrap"
	"github.com/xdrive-io/xdrive/internal/cloud"
	"github.com/xdrive-io/xdrive/internal/controller/workstation"
)

// UserData renders the bootstrap of one instance of a Workstation.
func UserData(in workstation.UserDataInput) ([]byte, error) {
	ws := in.Workstation
	return bootstrap.Render(bootstrap.Params{
		MountPath:      ws.Spec.MountPath,
		Filesystem:     in.Drive.Spec.Filesystem,
		DeviceName:     bootstrap.DriveDevice,
		BlankDrive:     in.BlankDrive,
		Prewarm:        in.Prewarm,
		GPU:            in.GPU,
		Containers:     ws.Spec.Containers,
		HostKeyPEM:     string(in.HostKey),
		AuthorizedKey:  in.Credentials.AuthorizedKey,
		WorkstationKey: cloud.ObjectKey(ws.Namespace, ws.Name),
	})
}
