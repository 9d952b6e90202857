// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title NaiveEventStore
 * @notice Benchmark baseline only, never deployed in production: one storage record per event, the design that
 * `EventAnchor` replaces with one Merkle root per batch.
 */
contract NaiveEventStore {
    struct StoredEvent {
        address submitter;
        uint64 storedAt;
    }

    /// @dev `eventHash` is stored already.
    error EventAlreadyStored(bytes32 eventHash);

    /// @dev `submitter` stored `eventHash`.
    event EventStored(bytes32 indexed eventHash, address indexed submitter);

    mapping(bytes32 eventHash => StoredEvent) public events;

    /**
     * @notice Stores one event hash.
     *
     * Requirements:
     * - `eventHash` is not stored yet.
     *
     * Emits an {EventStored} event.
     */
    function store(bytes32 eventHash) external {
        if (events[eventHash].submitter != address(0)) revert EventAlreadyStored(eventHash);
        events[eventHash] = StoredEvent({submitter: msg.sender, storedAt: uint64(block.timestamp)});
        emit EventStored(eventHash, msg.sender);
    }
}
