//! The 15 migration-task operations, named as the official SDK names them.

/// One operation of the migration-task API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CreateMigrationTask,
    CreateOnlineMigrationTask,
    SetOnlineMigrationTask,
    ShowMigrationTask,
    ShowMigrationTaskStats,
    ListMigrationTask,
    ListMigrationTaskLogs,
    StopMigrationTask,
    StopMigrationTaskSync,
    BatchStopMigrationTasks,
    BatchRestartOnlineMigrationTasks,
    UpdateMigrationTask,
    DeleteMigrationTask,
    ExchangeInstanceIp,
    RollbackExchangeInstanceIp,
}

impl Operation {
    /// Every operation, in the order of `dcs-api.md` §2 and §12.
    pub const ALL: [Operation; 15] = [
        Self::CreateMigrationTask,
        Self::CreateOnlineMigrationTask,
        Self::SetOnlineMigrationTask,
        Self::ShowMigrationTask,
        Self::ListMigrationTask,
        Self::ListMigrationTaskLogs,
        Self::ShowMigrationTaskStats,
        Self::StopMigrationTask,
        Self::StopMigrationTaskSync,
        Self::BatchStopMigrationTasks,
        Self::BatchRestartOnlineMigrationTasks,
        Self::UpdateMigrationTask,
        Self::DeleteMigrationTask,
        Self::ExchangeInstanceIp,
        Self::RollbackExchangeInstanceIp,
    ];

    /// The SDK's operation name (also the simulator's call-count key).
    pub fn name(self) -> &'static str {
        match self {
            Self::CreateMigrationTask => "CreateMigrationTask",
            Self::CreateOnlineMigrationTask => "CreateOnlineMigrationTask",
            Self::SetOnlineMigrationTask => "SetOnlineMigrationTask",
            Self::ShowMigrationTask => "ShowMigrationTask",
            Self::ShowMigrationTaskStats => "ShowMigrationTaskStats",
            Self::ListMigrationTask => "ListMigrationTask",
            Self::ListMigrationTaskLogs => "ListMigrationTaskLogs",
            Self::StopMigrationTask => "StopMigrationTask",
            Self::StopMigrationTaskSync => "StopMigrationTaskSync",
            Self::BatchStopMigrationTasks => "BatchStopMigrationTasks",
            Self::BatchRestartOnlineMigrationTasks => "BatchRestartOnlineMigrationTasks",
            Self::UpdateMigrationTask => "UpdateMigrationTask",
            Self::DeleteMigrationTask => "DeleteMigrationTask",
            Self::ExchangeInstanceIp => "ExchangeInstanceIp",
            Self::RollbackExchangeInstanceIp => "RollbackExchangeInstanceIp",
        }
    }

    /// The operation with this SDK name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Position in [`Operation::ALL`] (for counters kept in an array).
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|op| *op == self).unwrap_or(0)
    }

    /// True when sending the call twice has the effect of sending it once, so the client may
    /// retry it after an unknown outcome. Creates, configure and the IP switch-over are not:
    /// the controller decides what to do after their failure (a second exchange swaps back).
    /// Stops, restarts and deletes converge on the same end state, so they are.
    pub fn is_idempotent(self) -> bool {
        !matches!(
            self,
            Self::CreateMigrationTask
                | Self::CreateOnlineMigrationTask
                | Self::SetOnlineMigrationTask
                | Self::ExchangeInstanceIp
                | Self::RollbackExchangeInstanceIp
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
