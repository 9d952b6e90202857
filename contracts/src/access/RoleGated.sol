// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";

/**
 * @dev Base for contracts whose roles live in the shared {CircularAccess} registry rather than in themselves.
 * Reverts with OpenZeppelin's own {IAccessControl-AccessControlUnauthorizedAccount} error, so callers see one
 * error shape for a missing role whichever contract they called.
 */
abstract contract RoleGated {
    /// @notice The role registry this contract asks.
    IAccessControl public immutable access;

    constructor(IAccessControl access_) {
        access = access_;
    }

    modifier onlyRole(bytes32 role) {
        _checkRole(role, msg.sender);
        _;
    }

    function _checkRole(bytes32 role, address account) internal view {
        if (!access.hasRole(role, account)) {
            revert IAccessControl.AccessControlUnauthorizedAccount(account, role);
        }
    }

    function _hasRole(bytes32 role, address account) internal view returns (bool) {
        return access.hasRole(role, account);
    }
}
