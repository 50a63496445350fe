// SPDX-License-Identifier: MIT
// A decoder of PostgreSQL's logical replication protocol as the `pgoutput` plugin writes
// it (protocol version 1, text values): Begin, Commit, Relation, Type, Origin, Insert,
// Update, Delete, Truncate and Message, each the payload of one XLogData message of a
// START_REPLICATION stream (wal_stream.hpp). No server is needed to use it: it reads bytes
// and keeps the relations it was told of, as a subscriber must
// (https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html).
//
// Thread safety: one decoder per stream; not shared.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <modelrepo/error.hpp>

namespace modelrepo::detail::logical {

/// A WAL position (pg_lsn), as the server counts bytes of WAL.
using Lsn = std::uint64_t;

/// "16/B374D848", as PostgreSQL prints an LSN.
std::string format_lsn(Lsn lsn);
/// The other way; nullopt for text that is not an LSN.
std::optional<Lsn> parse_lsn(std::string_view text);

/// A transaction begins: every change until its Commit is part of it.
struct Begin {
    Lsn final_lsn = 0;          ///< where its commit record ends: the same in its Commit
    std::int64_t commit_us = 0; ///< commit time, microseconds since 2000-01-01 UTC
    std::uint32_t xid = 0;
};

struct Commit {
    Lsn commit_lsn = 0; ///< the commit record's LSN
    Lsn end_lsn = 0;    ///< the end of the transaction: what a subscriber confirms
    std::int64_t commit_us = 0;
};

/// A table, as the stream describes it before its first change (and again when it
/// changes). Changes name it by `oid`.
struct Relation {
    struct Column {
        std::string name;
        std::uint32_t type_oid = 0;
        bool key = false; ///< part of the replica identity
    };
    std::uint32_t oid = 0;
    std::string schema; ///< "" for pg_catalog
    std::string name;
    char replica_identity = 'd'; ///< 'd' default (primary key), 'n' nothing, 'f' full, 'i' index
    std::vector<Column> columns;
};

/// One row's values, by the relation's column order: a value in text form, nullopt for
/// NULL. A TOASTed value the update did not change is not sent: `unchanged` says which.
struct Tuple {
    std::vector<std::optional<std::string>> values;
    std::vector<bool> unchanged;
};

struct Change {
    enum class Kind { insert, update, delete_ };
    Kind kind = Kind::insert;
    const Relation* relation = nullptr; ///< the decoder's, valid until the next Relation for it
    std::optional<Tuple> old_row;       ///< update/delete: the key ('K') or the whole row ('O')
    std::optional<Tuple> new_row;       ///< insert/update
};

struct Truncate {
    std::vector<const Relation*> relations;
    bool cascade = false;
    bool restart_identity = false;
};

/// Told but not needed here: Type, Origin, a logical decoding message.
struct Other {
    char tag = 0;
};

using Message = std::variant<Begin, Commit, const Relation*, Change, Truncate, Other>;

class Reader; ///< pgoutput.cpp's: big-endian reads over one message

/// Reads pgoutput messages, one at a time, keeping the relations they describe.
class PgoutputDecoder {
public:
    /// One message (an XLogData's payload). Errc::bad_data naming the tag and the offset for
    /// bytes that are not one whole message, a change to a relation never described, or a
    /// change outside a transaction.
    Result<Message> decode(std::span<const char> bytes);

    /// The relation told under `oid`; nullptr when none was.
    const Relation* relation(std::uint32_t oid) const;
    /// Inside a transaction (a Begin not yet committed).
    bool in_transaction() const noexcept { return in_transaction_; }

private:
    Result<Message> decode_relation(Reader& in, char tag);
    Result<Message> decode_change(Reader& in, char tag);
    Result<Message> decode_truncate(Reader& in, char tag, std::size_t size);

    std::map<std::uint32_t, Relation> relations_;
    bool in_transaction_ = false;
};

} // namespace modelrepo::detail::logical
