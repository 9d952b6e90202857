// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Roles} from "./Roles.sol";

/**
 * @title CircularAccess
 * @notice The one role registry of a circular-ledger deployment. Every other contract asks it who holds which role,
 * so granting or revoking a role takes effect everywhere at once.
 */
contract CircularAccess is AccessControl {
    bytes32 public constant BRAND_ROLE = Roles.BRAND_ROLE;
    bytes32 public constant RECYCLER_ROLE = Roles.RECYCLER_ROLE;
    bytes32 public constant RETAILER_ROLE = Roles.RETAILER_ROLE;
    bytes32 public constant REPAIRER_ROLE = Roles.REPAIRER_ROLE;
    bytes32 public constant ANCHORER_ROLE = Roles.ANCHORER_ROLE;
    bytes32 public constant LOT_MANAGER_ROLE = Roles.LOT_MANAGER_ROLE;

    /**
     * @param admin The account that holds `DEFAULT_ADMIN_ROLE` and so administers every other role.
     *
     * Emits a {RoleGranted} event.
     */
    constructor(address admin) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }
}
