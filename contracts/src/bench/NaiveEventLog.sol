// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title NaiveEventLog
 * @notice Benchmark baseline only: one event log per transaction, no storage.
 */
contract NaiveEventLog {
    /// @dev `submitter` logged `eventHash`.
    event EventLogged(bytes32 indexed eventHash, address indexed submitter);

    /// @notice Logs one event hash. Emits an {EventLogged} event.
    function log(bytes32 eventHash) external {
        emit EventLogged(eventHash, msg.sender);
    }
}
