//! Pull-policy decisions (the local half; the registry client does the network half).

use zlayer_spec::PullPolicy;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::record::ImageRecord;

/// What to do about an image before running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullDecision {
    /// The local image is good to use as is.
    UseLocal(ImageRecord),
    /// Pull the image (it is absent, or the policy is `always`).
    MustPull,
    /// Ask the registry for the reference's current digest and pull only if it
    /// differs from this local one (policy `newer` with the image present).
    CheckRemote(Digest),
}

/// Decides from the policy and the local record (`None` = absent or incomplete).
pub fn decide(
    reference: &str,
    policy: PullPolicy,
    local: Option<ImageRecord>,
) -> Result<PullDecision> {
    Ok(match (policy, local) {
        (PullPolicy::Always, _) => PullDecision::MustPull,
        (PullPolicy::Newer, Some(rec)) => PullDecision::CheckRemote(rec.digest().clone()),
        (PullPolicy::Newer, None) | (PullPolicy::IfNotPresent, None) => PullDecision::MustPull,
        (PullPolicy::IfNotPresent, Some(rec)) | (PullPolicy::Never, Some(rec)) => {
            PullDecision::UseLocal(rec)
        }
        (PullPolicy::Never, None) => {
            return Err(Error::NotPresentPolicyNever {
                reference: reference.to_string(),
            })
        }
    })
}
