from .util import DictAction, import_class, str2bool, str2dict

__all__ = ['DictAction', 'import_class', 'str2bool', 'str2dict']
