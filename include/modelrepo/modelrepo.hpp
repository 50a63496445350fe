// SPDX-License-Identifier: MIT
/// @file
/// Umbrella header: everything a service needs to use modelrepo.
#pragma once

#include <modelrepo/catalog_admin.hpp>
#include <modelrepo/catalog_change.hpp>
#include <modelrepo/circuit_breaker.hpp>
#include <modelrepo/durable.hpp>
#include <modelrepo/error.hpp>
#include <modelrepo/fallback_repository.hpp>
#include <modelrepo/json_text.hpp>
#include <modelrepo/memory_repository.hpp>
#include <modelrepo/metrics.hpp>
#include <modelrepo/model_repository.hpp>
#include <modelrepo/open.hpp>
#include <modelrepo/outbox.hpp>
#include <modelrepo/progress.hpp>
#include <modelrepo/publish.hpp>
#include <modelrepo/snapshot.hpp>
#include <modelrepo/source_health.hpp>
#include <modelrepo/types.hpp>
#include <modelrepo/uri.hpp>
#include <modelrepo/version.hpp>

#if MODELREPO_HAS_GITHUB
#include <modelrepo/github_repository.hpp>
#endif
#if MODELREPO_HAS_POSTGRES
#include <modelrepo/postgres_config.hpp>
#include <modelrepo/postgres_doctor.hpp>
#include <modelrepo/postgres_repository.hpp>
#endif
