// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

interface ISubscriptionPass {
    function mint(bytes32 orderId, address token, uint256 amount, uint256 deadline, bytes calldata signature)
        external
        payable
        returns (uint256 passId);
}

/// @notice Test helper: pays several native-coin orders in one transaction. It is itself the payer every quote
/// names (SubscriptionPass takes msg.sender as the payer), so one transaction emits several Minted logs.
contract MultiPayer {
    struct Order {
        bytes32 orderId;
        uint256 amount;
        uint256 deadline;
        bytes signature;
    }

    function payAll(ISubscriptionPass pass, Order[] calldata orders) external payable {
        for (uint256 i = 0; i < orders.length; i++) {
            Order calldata o = orders[i];
            pass.mint{value: o.amount}(o.orderId, address(0), o.amount, o.deadline, o.signature);
        }
    }
}
