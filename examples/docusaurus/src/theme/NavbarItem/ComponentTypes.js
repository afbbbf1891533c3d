// Adds the navbar item type "custom-lanyardSession" (docusaurus.config.js).
import ComponentTypes from '@theme-original/NavbarItem/ComponentTypes';
import SessionNavbarItem from '@site/src/components/SessionNavbarItem';

export default {
  ...ComponentTypes,
  'custom-lanyardSession': SessionNavbarItem,
};
