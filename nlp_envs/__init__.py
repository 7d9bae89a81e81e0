"""nlp-envs: language tasks as Gymnasium environments, each written once as a batched numpy core.

Importing the package registers the environment ids in the ``nlp_envs`` namespace, so
``gym.make("nlp_envs/NextWord-v0")`` and ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
work; ``gym.make("nlp_envs:nlp_envs/NextWord-v0")`` imports it for you.
"""

from __future__ import annotations

from nlp_envs.core import CoreEnv, CoreVectorEnv, InvalidActionError, TaskCore
from nlp_envs.evaluation import Evaluation, evaluate
from nlp_envs.policies import reference_policies, reference_policy
from nlp_envs.registration import env_ids, register_builtin_envs, register_plugin_envs

__all__ = [
    "CoreEnv",
    "CoreVectorEnv",
    "Evaluation",
    "InvalidActionError",
    "TaskCore",
    "env_ids",
    "evaluate",
    "reference_policies",
    "reference_policy",
]
__version__ = "0.1.0"

register_builtin_envs()
register_plugin_envs()  # last: a plugin module may import nlp_envs
