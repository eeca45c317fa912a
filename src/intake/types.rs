//! What intake stores: the records live with the store that writes them.

pub use crate::store::records::{
    Applied, InboundState, InboundSummary, IntakeLookups, IntakeWrite, NewFollowUp, NewInbound,
    NewProposal, ProposalSummary, StoredInbound,
};
