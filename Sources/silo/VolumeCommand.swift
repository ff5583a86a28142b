import ArgumentParser

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Create, list and move data in and out of volumes.",
        subcommands: [
            VolumeCreate.self, VolumeList.self, VolumeDelete.self, VolumeRename.self,
            VolumePut.self, VolumeGet.self, VolumeLs.self, VolumeRm.self, VolumeCp.self,
            VolumeHistory.self, VolumeDiff.self, VolumeCommit.self, VolumeReload.self, VolumeStatus.self,
            VolumeRecover.self,
        ]
    )
}
